output "chunk_bucket" {
  description = "Upload chunks here."
  value       = module.rrstitch.chunk_bucket
}

output "results_bucket" {
  description = "Stitched sessions land here."
  value       = module.rrstitch.results_bucket
}

output "ingest_url" {
  description = "URL of the ingest service."
  value       = module.rrstitch.ingest_url
}

output "finalize_url" {
  description = "URL of the finalize service (POST /sweep, POST /reconcile, POST /finalize)."
  value       = module.rrstitch.finalize_url
}

output "dead_letter_subscription" {
  description = "Pull subscription holding chunk events ingest did not take (gcloud pubsub subscriptions pull; null with ingest_trigger = \"eventarc\")."
  value       = module.rrstitch.dead_letter_subscription
}

output "eventarc_trigger" {
  description = "With ingest_trigger = \"eventarc\": the Eventarc trigger delivering chunk events to ingest (null with pubsub)."
  value       = module.rrstitch.eventarc_trigger
}

output "finalize_dead_letter_subscription" {
  description = "Queue mode: pull subscription holding finalize messages that kept failing (null inline)."
  value       = module.rrstitch.finalize_dead_letter_subscription
}

output "reconcile_job" {
  description = "Cloud Scheduler job that reconciles the index with the chunk bucket (gcloud scheduler jobs run)."
  value       = module.rrstitch.reconcile_job
}

output "image_repository" {
  description = "Push the images here."
  value       = module.rrstitch.image_repository
}

output "service_accounts" {
  description = "Service account emails: ingest, finalize, trigger, scheduler."
  value = {
    ingest    = module.rrstitch.ingest_service_account
    finalize  = module.rrstitch.finalize_service_account
    trigger   = module.rrstitch.trigger_service_account
    scheduler = module.rrstitch.scheduler_service_account
  }
}
