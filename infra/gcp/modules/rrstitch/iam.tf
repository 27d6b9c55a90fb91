# One service account per identity, each with only what it needs:
#   ingest    reads chunk objects, reads/writes the session index
#   finalize  reads chunk objects, writes results, reads/writes the session index
#   trigger   the identity chunk events reach ingest as: invokes ingest; with
#             ingest_trigger = "eventarc" also receives Eventarc events (eventReceiver)
#   scheduler Cloud Scheduler's identity: invokes finalize (and nothing else)
#   queue-push (queue mode, queue.tf) the finalize push subscription's identity: invokes
#             finalize (and nothing else); finalize may then also publish to its jobs topic
# and two Google-managed service agents, each grant on one resource only:
#   Cloud Storage  publishes chunk notifications to the chunk-events topic (pubsub); with
#                  eventarc, publishes on the project (Eventarc's topic does not exist
#                  until the trigger creates it)
#   Pub/Sub        mints the trigger account's OIDC tokens for push (either route), moves
#                  undeliverable messages from the push subscription to the dead-letter
#                  topic (pubsub)
# Outside Firestore's roles only the two eventarc grants are project-wide: Eventarc documents
# them at that level. Nothing is granted to allUsers or allAuthenticatedUsers.

resource "google_service_account" "ingest" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-ingest"
  display_name = "rrstitch ingest (Cloud Run)"
}

resource "google_service_account" "finalize" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-finalize"
  display_name = "rrstitch finalize (Cloud Run)"
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-trigger"
  display_name = "rrstitch Pub/Sub push of chunk events (invokes ingest)"
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "rrstitch Cloud Scheduler sweep and reconcile (invokes finalize)"
}

# --- ingest

# objectUser (read, and delete): a chunk of an erased session is refused and deleted, so an
# erasure is not undone by a late upload. The resource keeps its name (no replacement on
# upgrade) although it grants more than viewing now; no predefined role is read + delete only.
resource "google_storage_bucket_iam_member" "ingest_chunks_viewer" {
  bucket = google_storage_bucket.chunks.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.ingest.email}"
}

resource "google_project_iam_member" "ingest_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.ingest.email}"
}

# --- finalize

# objectUser: get, list and delete objects — stitching reads chunks, reconcile lists the
# bucket, erasure (POST /delete) deletes a session's chunks. Name kept, as for ingest's grant.
resource "google_storage_bucket_iam_member" "finalize_chunks_viewer" {
  bucket = google_storage_bucket.chunks.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.finalize.email}"
}

# objectUser: create, read and overwrite/delete objects — a re-stitch overwrites its result.
resource "google_storage_bucket_iam_member" "finalize_results_user" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.finalize.email}"
}

resource "google_project_iam_member" "finalize_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.finalize.email}"
}

# --- the trigger account: chunk events reach ingest as it, by either route

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_ingest" {
  project  = var.project_id
  location = google_cloud_run_v2_service.ingest.location
  name     = google_cloud_run_v2_service.ingest.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Eventarc delivers as the trigger account only if it may receive events (project-level role).
resource "google_project_iam_member" "trigger_receives_events" {
  count = local.eventarc_trigger ? 1 : 0

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

# --- Cloud Storage service agent: publishes to the chunk-events topic only (pubsub)

resource "google_pubsub_topic_iam_member" "gcs_publishes_chunk_events" {
  count = local.pubsub_trigger ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.chunk_events[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# eventarc: a Cloud Storage trigger's events are published by the service agent to a topic
# Eventarc creates with the trigger, so the agent may publish on the project (Eventarc's
# documented requirement for Cloud Storage direct events).
resource "google_project_iam_member" "gcs_publishes_eventarc_events" {
  count = local.eventarc_trigger ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# --- Pub/Sub service agent

# Signs the OIDC tokens pushed as the trigger account, by the module's push subscription or by
# Eventarc's (which is Pub/Sub push too); needed for projects created before 8 April 2021,
# harmless after.
resource "google_service_account_iam_member" "pubsub_agent_mints_trigger_tokens" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Dead lettering (pubsub): the agent publishes the undeliverable message to the dead-letter
# topic and acknowledges it on the push subscription, so it needs both, on these two only.
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  count = local.pubsub_trigger ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.dead_letters[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_ingest_push" {
  count = local.pubsub_trigger ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.ingest_push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# --- Cloud Scheduler

resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_finalize" {
  project  = var.project_id
  location = google_cloud_run_v2_service.finalize.location
  name     = google_cloud_run_v2_service.finalize.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# --- people or automation allowed to POST /finalize by hand (none by default)

resource "google_cloud_run_v2_service_iam_member" "manual_finalize" {
  for_each = toset(var.manual_finalize_invokers)

  project  = var.project_id
  location = google_cloud_run_v2_service.finalize.location
  name     = google_cloud_run_v2_service.finalize.name
  role     = "roles/run.invoker"
  member   = each.value
}
