output "chunk_bucket" {
  description = "Name of the chunk bucket: upload <timestamp>.json chunks here."
  value       = google_storage_bucket.chunks.name
}

output "results_bucket" {
  description = "Name of the results bucket holding <session_guid>.json."
  value       = google_storage_bucket.results.name
}

output "ingest_url" {
  description = "URL of the ingest Cloud Run service (internal-only; Eventarc calls it)."
  value       = google_cloud_run_v2_service.ingest.uri
}

output "finalize_url" {
  description = "URL of the finalize Cloud Run service: POST /sweep (scheduler), POST /finalize {\"session_guid\": \"...\"} (IAM-authorized callers)."
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
  description = "Email of the Eventarc trigger's service account (invokes ingest)."
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

output "eventarc_trigger" {
  description = "Name of the Eventarc trigger (chunk object finalized → ingest)."
  value       = google_eventarc_trigger.chunk_finalized.name
}

output "sweep_job" {
  description = "Name of the Cloud Scheduler job that runs the sweep."
  value       = google_cloud_scheduler_job.sweep.name
}
