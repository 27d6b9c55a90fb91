# An example root module: rrstitch in one GCP project. Copy terraform.tfvars.example to
# terraform.tfvars, fill it in, then see docs/DEPLOY.md for the apply order
# (scripts/deploy-gcp.sh does it).

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "rrstitch" {
  source = "../modules/rrstitch"

  project_id          = var.project_id
  region              = var.region
  name_prefix         = var.name_prefix
  chunk_bucket_name   = var.chunk_bucket_name
  results_bucket_name = var.results_bucket_name
  ingest_image        = var.ingest_image
  finalize_image      = var.finalize_image

  firestore_location       = var.firestore_location
  sweep_schedule           = var.sweep_schedule
  reconcile_schedule       = var.reconcile_schedule
  ingest_trigger           = var.ingest_trigger
  max_delivery_attempts    = var.max_delivery_attempts
  finalize_mode            = var.finalize_mode
  idle_secs                = var.idle_secs
  output_gzip              = var.output_gzip
  segments                 = var.segments
  redact_rules             = var.redact_rules
  restrict_rules           = var.restrict_rules
  session_max_bytes        = var.session_max_bytes
  manual_finalize_invokers = var.manual_finalize_invokers
  deletion_protection      = var.deletion_protection
  force_destroy            = var.force_destroy
}
