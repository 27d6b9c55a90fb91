# The session index. Documents: <collection>/{guid} with status (open/finalizing/finalized),
# last_chunk_at, lease_until and expire_at; a chunks subcollection; rejected objects in
# <collection>_rejected (shared/src/index/firestore.rs).

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

# Sweep: status == "open" AND last_chunk_at < T ORDER BY last_chunk_at.
resource "google_firestore_index" "open_by_last_chunk" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = var.firestore_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "last_chunk_at"
    order      = "ASCENDING"
  }
}

# Expired leases: status == "finalizing" AND lease_until < T ORDER BY lease_until.
resource "google_firestore_index" "finalizing_by_lease" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = var.firestore_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "lease_until"
    order      = "ASCENDING"
  }
}

# TTL policy: a session document is deleted some time after its expire_at timestamp. The
# empty index_config drops the single-field indexes on expire_at, which no query uses.
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
