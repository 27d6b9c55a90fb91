//! The selectors a mask rule may use: a tag, `.class`, `#id`, `[attr]`, `[attr=value]`, and
//! compounds of those without spaces (`input.pw`, `div[data-private]`). Nothing that needs
//! an element's ancestors or siblings: the redactor sees one serialized node at a time and
//! keeps no DOM, only the ids of the nodes it masked (descendants inherit the mask instead).

/// One compound selector, matched against an rrweb-snapshot element node.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    /// Lowercase tag name, if the selector names one.
    tag: Option<String>,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Class(String),
    Id(String),
    /// An attribute (lowercase name), present, or with exactly this value.
    Attr(String, Option<String>),
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// Splits a leading name off `text`.
fn name(text: &str) -> (&str, &str) {
    let end = text.find(|c| !is_name_char(c)).unwrap_or(text.len());
    text.split_at(end)
}

impl Selector {
    /// Parses a selector; the error says what is not supported.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("is empty".into());
        }
        let mut selector = Selector {
            tag: None,
            parts: Vec::new(),
        };
        let (tag, after) = name(rest);
        if !tag.is_empty() {
            selector.tag = Some(tag.to_ascii_lowercase());
            rest = after;
        }
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '.' | '#' => {
                    let (n, after) = name(rest);
                    if n.is_empty() {
                        return Err(format!("`{c}` needs a name after it"));
                    }
                    selector.parts.push(if c == '.' {
                        Part::Class(n.to_owned())
                    } else {
                        Part::Id(n.to_owned())
                    });
                    rest = after;
                }
                '[' => {
                    let close = rest.find(']').ok_or("`[` is not closed")?;
                    selector.parts.push(attribute(&rest[..close])?);
                    rest = &rest[close + 1..];
                }
                _ => {
                    return Err(format!(
                        "unsupported `{c}`: only a tag, .class, #id, [attr] and [attr=value], combined without spaces"
                    ))
                }
            }
        }
        Ok(selector)
    }

    /// Whether an element with this tag and these attributes matches (rrweb-snapshot element
    /// `tagName` and `attributes`; an attribute's value is read as a string when it is one).
    pub(crate) fn matches<'v>(
        &self,
        tag: &str,
        attribute: impl Fn(&str) -> Option<&'v serde_json::Value>,
    ) -> bool {
        if self
            .tag
            .as_ref()
            .is_some_and(|t| !t.eq_ignore_ascii_case(tag))
        {
            return false;
        }
        let text = |name: &str| attribute(name).map(|v| v.as_str().unwrap_or_default());
        self.parts.iter().all(|part| match part {
            Part::Class(c) => {
                text("class").is_some_and(|v| v.split_ascii_whitespace().any(|x| x == c))
            }
            Part::Id(id) => text("id") == Some(id.as_str()),
            Part::Attr(n, None) => attribute(n).is_some(),
            Part::Attr(n, Some(want)) => text(n) == Some(want.as_str()),
        })
    }
}

/// `attr`, `attr=value`, `attr="value"` or `attr='value'` (the inside of `[...]`).
fn attribute(inside: &str) -> Result<Part, String> {
    let (n, rest) = name(inside.trim());
    if n.is_empty() {
        return Err("`[...]` needs an attribute name".into());
    }
    let n = n.to_ascii_lowercase();
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(Part::Attr(n, None));
    }
    let value = rest
        .strip_prefix('=')
        .ok_or_else(|| format!("unsupported attribute operator in `[{inside}]`: only `=`"))?
        .trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    if unquoted.contains(['"', '\'']) {
        return Err(format!("badly quoted value in `[{inside}]`"));
    }
    Ok(Part::Attr(n, Some(unquoted.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn matches(selector: &str, tag: &str, attrs: Value) -> bool {
        let s = Selector::parse(selector).unwrap();
        s.matches(tag, |n| attrs.get(n))
    }

    #[test]
    fn simple_and_compound_selectors_match() {
        let attrs =
            json!({"class": "a secret b", "id": "ssn", "data-private": "", "type": "password"});
        for s in [
            "input",
            "INPUT",
            ".secret",
            "#ssn",
            "[data-private]",
            "[type=password]",
            "[type=\"password\"]",
            "[ type = 'password' ]",
            "input.secret#ssn[type=password]",
        ] {
            assert!(matches(s, "input", attrs.clone()), "{s}");
        }
        for s in [
            "div",
            ".secre",
            "#ss",
            "[data-public]",
            "[type=text]",
            "div.secret",
        ] {
            assert!(!matches(s, "input", attrs.clone()), "{s}");
        }
    }

    #[test]
    fn unsupported_selectors_are_refused() {
        for s in [
            "div p", "div > p", "a:hover", "*", "", ".", "[x", "[x^=y]", "a,b", "[x=\"y]",
        ] {
            assert!(Selector::parse(s).is_err(), "{s}");
        }
    }
}
