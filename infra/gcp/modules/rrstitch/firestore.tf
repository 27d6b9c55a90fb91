# The session index. Documents: <collection>/{guid} with status (open/finalizing/finalized),
# shard, last_chunk_at, lease_until and expire_at; a chunks subcollection; rejected objects in
# <collection>_rejected; the shard high-water mark in <collection>_meta
# (shared/src/index/firestore/).

resource "google_firestore_database" "index" {
  count = var.create_firestore_database ? 1 : 0

  project                 = var.project_id
  name                    = var.firestore_database
  location_id             = local.firestore_location
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.apis]
}

# The idle index is sharded: every session document carries `shard` (a hash of its guid
# modulo RRSTITCH_INDEX_SHARDS), and every composite index leads with it. Each chunk write
# moves its session's last_chunk_at to "now"; Firestore sustains ~500 writes/s into one such
# sequential index range, so led by `status` alone every write would land at the end of one
# range. Led by the shard, they spread over one range per shard (shared/src/index/shard.rs).

# Sweep, per shard: shard == s AND status == "open" AND last_chunk_at < T ORDER BY last_chunk_at.
resource "google_firestore_index" "open_by_shard_last_chunk" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = var.firestore_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "shard"
    order      = "ASCENDING"
  }

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "last_chunk_at"
    order      = "ASCENDING"
  }
}

# Expired leases, per shard: shard == s AND status == "finalizing" AND lease_until < T
# ORDER BY lease_until.
resource "google_firestore_index" "finalizing_by_shard_lease" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = var.firestore_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "shard"
    order      = "ASCENDING"
  }

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "lease_until"
    order      = "ASCENDING"
  }
}

# The session listing (`rrstitch sessions`), per shard: shard == s ORDER BY last_chunk_at DESC.
# last_chunk_at has no single-field index (below), so the listing needs this one.
resource "google_firestore_index" "sessions_by_shard_recent" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = var.firestore_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "shard"
    order      = "ASCENDING"
  }

  fields {
    field_path = "last_chunk_at"
    order      = "DESCENDING"
  }
}

# Single-field index exemptions. Firestore indexes every field on its own unless told not to;
# for a field whose values rise with time and are written at chunk rate, that index is one
# sequential hot range, and no query uses it. The empty index_config drops it. The list is
# rrstitch::index::firestore::SEQUENTIAL_FIELDS (the expire_at ones are the TTL fields below).

resource "google_firestore_field" "last_chunk_at" {
  project    = var.project_id
  database   = local.firestore_database
  collection = var.firestore_collection
  field      = "last_chunk_at"

  index_config {}
}

resource "google_firestore_field" "lease_until" {
  project    = var.project_id
  database   = local.firestore_database
  collection = var.firestore_collection
  field      = "lease_until"

  index_config {}
}

resource "google_firestore_field" "finalized_at" {
  project    = var.project_id
  database   = local.firestore_database
  collection = var.firestore_collection
  field      = "finalized_at"

  index_config {}
}

resource "google_firestore_field" "first_chunk_time" {
  project    = var.project_id
  database   = local.firestore_database
  collection = var.firestore_collection
  field      = "first_chunk_time"

  index_config {}
}

resource "google_firestore_field" "last_chunk_time" {
  project    = var.project_id
  database   = local.firestore_database
  collection = var.firestore_collection
  field      = "last_chunk_time"

  index_config {}
}

# Chunk documents are written at the full chunk rate and never queried by field.
resource "google_firestore_field" "chunks_recorded_at" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "chunks"
  field      = "recorded_at"

  index_config {}
}

resource "google_firestore_field" "chunks_name" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "chunks"
  field      = "name"

  index_config {}
}

resource "google_firestore_field" "chunks_generation" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "chunks"
  field      = "generation"

  index_config {}
}

resource "google_firestore_field" "chunks_timestamp" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "chunks"
  field      = "timestamp"

  index_config {}
}

# TTL policy: a session document is deleted some time after its expire_at timestamp. The
# empty index_config drops the single-field indexes on expire_at, which no query uses (and
# which would be a sequential hot range).
resource "google_firestore_field" "expire_at" {
  project    = var.project_id
  database   = local.firestore_database
  collection = var.firestore_collection
  field      = "expire_at"

  ttl_config {}

  index_config {}
}

# The same TTL on the documents that live beside the sessions: the chunks subcollection
# (collection group "chunks") and rejected objects. Deleting a session document does not
# delete its subcollection, so chunk documents need their own expiry. Documents without
# expire_at never expire.
resource "google_firestore_field" "chunks_expire_at" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "chunks"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}

resource "google_firestore_field" "rejected_expire_at" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "${var.firestore_collection}_rejected"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}
