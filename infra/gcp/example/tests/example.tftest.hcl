# `terraform test` (plan only) of the example root module with the stand-in hashicorp/google
# provider (scripts/install-tf-standin.sh; tests/tests/infra_gcp_plan.rs runs this). Nothing is
# overridden here: the provider plans every resource and reads both data sources, so this run
# proves the whole configuration matches hashicorp/google 6.50.0's schema and plans.
# tests/rrstitch.tftest.hcl holds the assertions on the module's resources.

variables {
  project_id          = "test-project"
  chunk_bucket_name   = "test-project-rrstitch-chunks"
  results_bucket_name = "test-project-rrstitch-results"
  ingest_image        = "europe-west1-docker.pkg.dev/test-project/rrstitch/rrstitch-ingest:test"
  finalize_image      = "europe-west1-docker.pkg.dev/test-project/rrstitch/rrstitch-finalize:test"
}

run "example_plans" {
  command = plan

  assert {
    condition = (
      output.chunk_bucket == "test-project-rrstitch-chunks"
      && output.results_bucket == "test-project-rrstitch-results"
      && output.image_repository == "europe-west1-docker.pkg.dev/test-project/rrstitch"
      && output.dead_letter_subscription == "rrstitch-chunk-events-dead-letter-hold"
      && output.reconcile_job == "rrstitch-reconcile"
    )
    error_message = "The example's outputs must name what the module creates."
  }
}

# The other trigger: the Eventarc trigger and its grants plan against the schema with nothing
# overridden, and the push route's outputs are null.
run "example_plans_with_eventarc" {
  command = plan

  variables {
    ingest_trigger = "eventarc"
  }

  assert {
    condition = (
      output.eventarc_trigger == "rrstitch-chunk-finalized"
      && output.dead_letter_subscription == null
      && output.reconcile_job == "rrstitch-reconcile"
    )
    error_message = "With ingest_trigger = \"eventarc\" the example must name the trigger, have no dead-letter subscription and keep the reconcile."
  }
}
