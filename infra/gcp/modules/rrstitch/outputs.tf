output "chunk_bucket" {
  description = "Name of the chunk bucket: upload <timestamp>.json chunks here."
  value       = google_storage_bucket.chunks.name
}

output "results_bucket" {
  description = "Name of the results bucket holding <session_guid>.json."
  value       = google_storage_bucket.results.name
}

output "ingest_url" {
  description = "URL of the ingest Cloud Run service (internal-only; the push subscription calls POST /pubsub, an Eventarc trigger POST /)."
  value       = google_cloud_run_v2_service.ingest.uri
}

output "finalize_url" {
  description = "URL of the finalize Cloud Run service: POST /sweep and POST /reconcile (scheduler), POST /finalize {\"session_guid\": \"...\"} (IAM-authorized callers)."
  value       = google_cloud_run_v2_service.finalize.uri
}

output "ingest_service_account" {
  description = "Email of the ingest service's service account."
  value       = google_service_account.ingest.email
}

output "finalize_service_account" {
  description = "Email of the finalize service's service account."
  value       = google_service_account.finalize.email
}

output "trigger_service_account" {
  description = "Email of the trigger service account chunk events reach ingest as (invokes ingest; by the push subscription, or the Eventarc trigger)."
  value       = google_service_account.trigger.email
}

output "scheduler_service_account" {
  description = "Email of the Cloud Scheduler job's service account (invokes finalize)."
  value       = google_service_account.scheduler.email
}

output "image_repository" {
  description = "Artifact Registry path to push images to: REGION-docker.pkg.dev/PROJECT/REPOSITORY."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "firestore_database" {
  description = "Firestore database id of the session index."
  value       = local.firestore_database
}

output "firestore_collection" {
  description = "Firestore collection of session documents."
  value       = var.firestore_collection
}

output "ingest_trigger" {
  description = "How chunk events reach ingest: pubsub or eventarc."
  value       = var.ingest_trigger
}

output "chunk_events_topic" {
  description = "Pub/Sub topic the chunk bucket's OBJECT_FINALIZE notifications are published to (null with eventarc)."
  value       = one(google_pubsub_topic.chunk_events[*].name)
}

output "ingest_push_subscription" {
  description = "Push subscription that delivers chunk events to ingest's POST /pubsub (null with eventarc)."
  value       = one(google_pubsub_subscription.ingest_push[*].name)
}

output "dead_letter_topic" {
  description = "Pub/Sub topic of chunk events ingest did not take after max_delivery_attempts (null with eventarc)."
  value       = one(google_pubsub_topic.dead_letters[*].name)
}

output "dead_letter_subscription" {
  description = "Pull subscription holding the dead letters: gcloud pubsub subscriptions pull it to inspect them (null with eventarc, which has none)."
  value       = one(google_pubsub_subscription.dead_letters_hold[*].name)
}

output "eventarc_trigger" {
  description = "With ingest_trigger = \"eventarc\": the Eventarc trigger that POSTs chunk events to ingest's / (null with pubsub); gcloud eventarc triggers describe it for its Pub/Sub subscription."
  value       = one(google_eventarc_trigger.chunk_finalized[*].name)
}

output "sweep_job" {
  description = "Name of the Cloud Scheduler job that runs the sweep."
  value       = google_cloud_scheduler_job.sweep.name
}

output "reconcile_job" {
  description = "Name of the Cloud Scheduler job that runs the reconcile (gcloud scheduler jobs run it to reconcile now)."
  value       = google_cloud_scheduler_job.reconcile.name
}

output "finalize_jobs_topic" {
  description = "Queue mode: Pub/Sub topic the sweep publishes one message per idle session to (null inline)."
  value       = one(google_pubsub_topic.finalize_jobs[*].name)
}

output "finalize_push_subscription" {
  description = "Queue mode: push subscription that delivers finalize messages to finalize's POST /pubsub/finalize (null inline)."
  value       = one(google_pubsub_subscription.finalize_push[*].name)
}

output "finalize_dead_letter_subscription" {
  description = "Queue mode: pull subscription holding finalize messages that failed finalize_max_delivery_attempts times (null inline)."
  value       = one(google_pubsub_subscription.finalize_dead_letters_hold[*].name)
}

output "queue_push_service_account" {
  description = "Queue mode: email of the finalize push subscription's service account (invokes finalize; null inline)."
  value       = one(google_service_account.queue_push[*].email)
}
