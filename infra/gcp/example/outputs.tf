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
  description = "URL of the finalize service (POST /sweep, POST /finalize)."
  value       = module.rrstitch.finalize_url
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
