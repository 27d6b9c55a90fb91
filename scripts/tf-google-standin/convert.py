"""Turns the hashicorp/google provider's schema, as the cdktf prebuilt provider ships it, into
the schema the stand-in provider serves (scripts/tf-google-standin/provider.py).

Source: the PyPI wheel cdktf-cdktf-provider-google==16.12.1, which is cdktf's binding of
hashicorp/google 6.50.0. Its `_jsii/provider-google@16.12.1.jsii.tgz` is the npm package
@cdktf/provider-google@16.12.1:

  package/.jsii             the jsii assembly (~98 MB of JSON): for every resource and data
                            source a Config struct whose properties are the arguments, with
                            `optional` flags, nested struct types for blocks, docs holding
                            "Possible values: [...]" for enums and a registry link whose
                            #anchor is the Terraform attribute name; the resource class's
                            read-only getters are the computed-only attributes.
  package/lib/*/index.js    the generated code the assembly describes. Two facts the
                            assembly's types do not carry are read from it: how each argument
                            is written in HCL (`synthesizeHclAttributes` / `*ToHclTerraform`:
                            block or attribute, list, set or single) and the Terraform names of
                            computed-only attributes (`// name - computed: true, ...` before
                            each getter).

Only the types asked for (the ones infra/gcp uses) and the provider's own configuration are
converted. What the source cannot tell is documented in scripts/tf-google-standin/README.md
(chiefly: which optional attributes are also computed).

Usage: convert.py JSII_TGZ OUT.json TYPE...   (TYPE: resource.google_x or data.google_x)
"""

import json
import re
import sys
import tarfile

PROVIDER_VERSION = "6.50.0"
ASSEMBLY = "@cdktf/provider-google"

LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/google/"
    + re.escape(PROVIDER_VERSION)
    + r"/docs(?:/(resources|data-sources)/(\w+))?(?:#(\w+))? ([^}]*)\}"
)
POSSIBLE = re.compile(r"Possible values: \[([^\]]*)\]")
HCL_ENTRY = re.compile(
    r"^\s*(\w+): \{\n\s*value: .*\n\s*isBlock: (true|false),\n\s*type: \"(\w+)\",\n"
    r"\s*storageClassType: \"(\w+)\",\n\s*\},?$",
    re.M,
)
COMPUTED = re.compile(
    r"// (\w+) - computed: (true|false), optional: (true|false), required: (true|false)\n"
    r"\s*(?:get (\w+)\(\)|this\._(\w+) = new )"
)
SECTION = re.compile(r"^(?:class (\w+) extends|function (\w+)ToHclTerraform\(struct\))", re.M)


class ConvertError(Exception):
    pass


def lower_first(name):
    return name[:1].lower() + name[1:]


class JsModule:
    """The facts read from one lib/<module>/index.js, by class or struct name."""

    def __init__(self, text):
        # name -> {tf_name: (isBlock, type, storageClassType)}
        self.hcl = {}
        # class name -> {camelName: (tf_name, computed, optional, required)}
        self.comments = {}
        starts = [(m.start(), m.group(1) or m.group(2)) for m in SECTION.finditer(text)]
        for i, (start, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            body = text[start:end]
            entries = {m.group(1): (m.group(2) == "true", m.group(3), m.group(4)) for m in HCL_ENTRY.finditer(body)}
            if "const attrs = {" in body:
                # functions are named after the struct with a lower-case first letter
                self.hcl[name[:1].upper() + name[1:]] = entries
            comments = {}
            for m in COMPUTED.finditer(body):
                camel = m.group(5) or m.group(6)
                comments[camel] = (m.group(1), m.group(2) == "true", m.group(3) == "true", m.group(4) == "true")
            if comments:
                self.comments[name] = comments


class Converter:
    def __init__(self, assembly, js_modules):
        self.types = assembly["types"]
        self.js = js_modules  # module dir -> JsModule
        self.unanchored = []  # properties named without an anchor

    def js_for(self, fqn):
        t = self.types[fqn]
        # src/<dir>/index.ts, or src/<dir>/index-structs/structsN.ts for the largest types
        path = t["locationInModule"]["filename"]
        m = re.fullmatch(r"src/([\w/-]+)\.ts", path)
        if not m or m.group(1) not in self.js:
            raise ConvertError(f"no generated code for {fqn} ({path})")
        return self.js[m.group(1)]

    # --- names ---------------------------------------------------------------------------

    @staticmethod
    def anchor(prop):
        docs = prop.get("docs", {})
        for text in (docs.get("remarks", ""), docs.get("summary", "")):
            for m in LINK.finditer(text):
                if m.group(3):
                    return m.group(3)
        return None

    # --- types ---------------------------------------------------------------------------

    @staticmethod
    def unwrap(ty):
        if "union" in ty:
            rest = [t for t in ty["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
            if len(rest) != 1:
                raise ConvertError(f"unexpected union {ty}")
            return rest[0]
        return ty

    @staticmethod
    def primitive(name):
        try:
            return {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic"}[name]
        except KeyError:
            raise ConvertError(f"unexpected primitive {name}") from None

    def config_type(self, ty, hcl_kind):
        """cty type of an argument that is an attribute (not a block)."""
        ty = self.unwrap(ty)
        if "primitive" in ty:
            return self.primitive(ty["primitive"])
        if "collection" in ty:
            kind = ty["collection"]["kind"]
            elem = self.unwrap(ty["collection"]["elementtype"])
            elem_t = self.config_type(elem, "simple")
            if kind == "map":
                return ["map", elem_t]
            if kind == "array":
                return ["set" if hcl_kind == "set" else "list", elem_t]
            raise ConvertError(f"unexpected collection {ty}")
        fqn = ty.get("fqn", "")
        if fqn in self.types and self.types[fqn].get("datatype"):
            # a struct written as an attribute (ConfigMode attr): an object
            return ["object", {a["name"]: a["type"] for a in self.block(fqn)["attributes"]}]
        raise ConvertError(f"unexpected argument type {ty}")

    def computed_type(self, ty):
        """cty type of a read-only getter."""
        ty = self.unwrap(ty)
        if "primitive" in ty:
            return self.primitive(ty["primitive"])
        if "collection" in ty:
            kind = ty["collection"]["kind"]
            elem_t = self.computed_type(ty["collection"]["elementtype"])
            return ["map", elem_t] if kind == "map" else ["list", elem_t]
        fqn = ty.get("fqn", "")
        simple = {
            "cdktf.StringMap": ["map", "string"],
            "cdktf.NumberMap": ["map", "number"],
            "cdktf.BooleanMap": ["map", "bool"],
            "cdktf.AnyMap": ["map", "dynamic"],
            "cdktf.StringMapList": ["list", ["map", "string"]],
            "cdktf.IResolvable": "bool",  # cdktf's getter type for computed booleans
        }
        if fqn in simple:
            return simple[fqn]
        for suffix in ("List", "OutputReference"):
            if fqn.endswith(suffix) and fqn[: -len(suffix)] + "OutputReference" in self.types:
                ref = fqn[: -len(suffix)] + "OutputReference"
                attrs = self.computed_attributes(ref, set())
                return ["list", ["object", {a["name"]: a["type"] for a in attrs}]]
        raise ConvertError(f"unexpected computed type {ty}")

    # --- blocks --------------------------------------------------------------------------

    def computed_attributes(self, class_fqn, config_names):
        """The computed-only attributes of a resource class or an OutputReference."""
        cls = self.types.get(class_fqn)
        if cls is None:
            return []
        comments = self.js_for(class_fqn).comments.get(cls["name"], {})
        out = []
        for prop in cls.get("properties", []):
            if prop.get("static") or not prop.get("immutable"):
                continue
            name = prop["name"]
            if name in config_names or name not in comments:
                continue
            tf_name, computed, optional, required = comments[name]
            if not computed or optional or required:
                continue
            out.append(
                {
                    "name": tf_name,
                    "type": self.computed_type(prop["type"]),
                    "required": False,
                    "optional": False,
                    "computed": True,
                }
            )
        return out

    def block(self, struct_fqn, class_fqn=None, skip=(), top=False):
        """A schema block from a struct (a resource's Config, or a nested block's) and the class
        reading it (the resource class, or the struct's OutputReference)."""
        struct = self.types[struct_fqn]
        js = self.js_for(struct_fqn)
        # a resource's arguments are synthesized by its class, a nested block's by a function
        hcl_owner = self.types[class_fqn]["name"] if top else struct["name"]
        hcl = js.hcl.get(hcl_owner)
        if hcl is None:
            raise ConvertError(f"no HCL synthesis for {hcl_owner}")
        attributes, block_types = [], []
        config_names = set()
        for prop in struct.get("properties", []):
            camel = prop["name"]
            config_names.add(camel)
            if camel in skip:
                continue
            name = self.anchor(prop)
            if name is None:
                # A few docs are mangled (code in a doc comment ends the comment early): then
                # the HCL name the code writes that spells the same, ignoring underscores.
                same = [h for h in hcl if h.replace("_", "") == camel.lower()]
                if len(same) != 1:
                    raise ConvertError(f"{struct_fqn}.{camel}: no registry #anchor in its docs")
                name = same[0]
                self.unanchored.append(f"{struct_fqn}.{camel} -> {name}")
            if name not in hcl:
                raise ConvertError(f"{struct_fqn}.{camel}: anchor #{name} is not an argument the code writes ({sorted(hcl)})")
            is_block, kind, _storage = hcl[name]
            optional = bool(prop.get("optional"))
            docs = prop.get("docs", {})
            text = (docs.get("summary", "") + " " + docs.get("remarks", "")).strip()
            if is_block:
                ty = self.unwrap(prop["type"])
                many = "collection" in ty
                elem = self.unwrap(ty["collection"]["elementtype"]) if many else ty
                elem_fqn = elem["fqn"]
                nesting = {"list": "list", "set": "set", "struct": "single"}[kind]
                block_types.append(
                    {
                        "type_name": name,
                        "nesting": nesting,
                        "min_items": 0 if optional or nesting == "single" else 1,
                        "max_items": 0 if many or nesting == "single" else 1,
                        "required": not optional,
                        "block": self.block(elem_fqn, elem_fqn + "OutputReference"
                                            if elem_fqn + "OutputReference" in self.types else None),
                    }
                )
                continue
            attr = {
                "name": name,
                "type": self.config_type(prop["type"], kind),
                "required": not optional,
                "optional": optional,
                # SDKv2 gives every resource and data source an optional+computed id
                "computed": top and name == "id" and optional,
                "description": LINK.sub("", text).strip()[:400],
            }
            m = POSSIBLE.search(text)
            if m and attr["type"] == "string":
                attr["enum"] = re.findall(r'"([^"]*)"', m.group(1))
            attributes.append(attr)
        if class_fqn:
            attributes.extend(self.computed_attributes(class_fqn, config_names))
        # the HCL synthesis names every argument; the assembly must have given each one
        written = {a["name"] for a in attributes} | {b["type_name"] for b in block_types}
        missing = sorted(set(hcl) - written - set(skip))
        if missing:
            raise ConvertError(f"{struct_fqn}: the code writes {missing}, the assembly has no property for them")
        return {"attributes": attributes, "block_types": block_types}

    def classes(self):
        """(kind, type name) -> class fqn of every resource and data source."""
        found = {}
        for fqn, t in self.types.items():
            if t.get("kind") != "class" or t.get("assembly") != ASSEMBLY:
                continue
            summary = t.get("docs", {}).get("summary", "")
            if not summary.startswith("Represents a "):
                continue
            m = LINK.search(summary)
            if m and m.group(1):
                kind = "resource" if m.group(1) == "resources" else "data"
                found[(kind, m.group(4).strip())] = fqn
        return found


def convert(tgz_path, wanted):
    """Reads the tarball once: the assembly comes first, then the generated modules."""
    assembly, js = None, {}
    needed_dirs = None
    with tarfile.open(tgz_path, "r|gz") as tar:
        for member in tar:
            if member.name == "package/.jsii":
                assembly = json.load(tar.extractfile(member))
                conv = Converter(assembly, js)
                classes = conv.classes()
                targets = {}
                for w in wanted:
                    kind, _, name = w.partition(".")
                    if (kind, name) not in classes:
                        raise ConvertError(f"hashicorp/google {PROVIDER_VERSION} has no {kind} {name}")
                    targets[w] = classes[(kind, name)]
                targets["provider"] = f"{ASSEMBLY}.provider.GoogleProvider"
                needed_dirs = set()
                for fqn in targets.values():
                    needed_dirs.add(re.fullmatch(r"src/([\w-]+)/[\w/-]+\.ts",
                                                 assembly["types"][fqn]["locationInModule"]["filename"]).group(1))
                continue
            m = re.fullmatch(r"package/lib/(([\w-]+)/[\w/-]+)\.js", member.name)
            if m and needed_dirs is not None and m.group(2) in needed_dirs:
                js[m.group(1)] = JsModule(tar.extractfile(member).read().decode())
    if assembly is None:
        raise ConvertError(f"{tgz_path} holds no package/.jsii")
    found_dirs = {k.split("/")[0] for k in js}
    if found_dirs != needed_dirs:
        raise ConvertError(f"generated code missing for {sorted(needed_dirs - found_dirs)}")

    out = {
        "source": f"cdktf-cdktf-provider-google==16.12.1 (hashicorp/google {PROVIDER_VERSION}), "
        "converted by scripts/tf-google-standin/convert.py",
        "provider_version": PROVIDER_VERSION,
        "provider": None,
        "resources": {},
        "data_sources": {},
    }
    for w, fqn in targets.items():
        config = fqn + "Config"
        if w == "provider":
            # alias is Terraform's own meta-argument, not the provider's
            out["provider"] = conv.block(config, fqn, skip=("alias",), top=True)
            continue
        kind, _, name = w.partition(".")
        out["resources" if kind == "resource" else "data_sources"][name] = conv.block(config, fqn, top=True)
    out["unanchored"] = conv.unanchored
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tgz, dest, wanted = argv[0], argv[1], sorted(set(argv[2:]))
    try:
        schema = convert(tgz, wanted)
    except ConvertError as e:
        print(f"convert.py: {e}", file=sys.stderr)
        return 1
    with open(dest, "w") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
    print(f"convert.py: {len(schema['resources'])} resources, {len(schema['data_sources'])} data sources -> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
