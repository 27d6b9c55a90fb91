# `terraform test` (plan only) of the rrstitch module as the example deploys it, with the
# stand-in hashicorp/google provider (scripts/install-tf-standin.sh; tests/tests/infra_gcp_plan.rs
# runs this). The runs below use the module itself as the configuration under test, so their
# assertions can read its resources.
#
# A plan leaves what GCP assigns unknown (service URLs, service account emails, topic ids).
# The overrides below make those few known during the plan — one distinct value each — so the
# assertions can check that each reference goes where it should (the notification to the
# chunk-events topic, the push to ingest's URL as the trigger account, ...). The overridden
# resources are planned by the provider in tests/example.tftest.hcl, which overrides nothing.

provider "google" {
  project = "test-project"
  region  = "europe-west1"
}

provider "google-beta" {
  project = "test-project"
  region  = "europe-west1"
}

variables {
  project_id          = "test-project"
  region              = "europe-west1"
  chunk_bucket_name   = "test-project-rrstitch-chunks"
  results_bucket_name = "test-project-rrstitch-results"
  ingest_image        = "europe-west1-docker.pkg.dev/test-project/rrstitch/rrstitch-ingest:test"
  finalize_image      = "europe-west1-docker.pkg.dev/test-project/rrstitch/rrstitch-finalize:test"
}

override_data {
  target          = data.google_project.this
  override_during = plan
  values = {
    number = "123456789012"
  }
}

override_data {
  target          = data.google_storage_project_service_account.gcs
  override_during = plan
  values = {
    email_address = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_pubsub_topic.chunk_events
  override_during = plan
  values = {
    id = "projects/test-project/topics/rrstitch-chunk-events"
  }
}

override_resource {
  target          = google_pubsub_topic.dead_letters
  override_during = plan
  values = {
    id = "projects/test-project/topics/rrstitch-chunk-events-dead-letter"
  }
}

override_resource {
  target          = google_cloud_run_v2_service.ingest
  override_during = plan
  values = {
    uri = "https://rrstitch-ingest-test.a.run.app"
  }
}

override_resource {
  target          = google_cloud_run_v2_service.finalize
  override_during = plan
  values = {
    uri = "https://rrstitch-finalize-test.a.run.app"
  }
}

override_resource {
  target          = google_service_account.ingest
  override_during = plan
  values = {
    email = "rrstitch-ingest@test-project.iam.gserviceaccount.com"
    name  = "projects/test-project/serviceAccounts/rrstitch-ingest@test-project.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.finalize
  override_during = plan
  values = {
    email = "rrstitch-finalize@test-project.iam.gserviceaccount.com"
    name  = "projects/test-project/serviceAccounts/rrstitch-finalize@test-project.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.trigger
  override_during = plan
  values = {
    email = "rrstitch-trigger@test-project.iam.gserviceaccount.com"
    name  = "projects/test-project/serviceAccounts/rrstitch-trigger@test-project.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.scheduler
  override_during = plan
  values = {
    email = "rrstitch-scheduler@test-project.iam.gserviceaccount.com"
    name  = "projects/test-project/serviceAccounts/rrstitch-scheduler@test-project.iam.gserviceaccount.com"
  }
}

# Queue mode's resources (queue.tf), for the finalize_queue_mode run: each instance gets the
# value its name would have.

override_resource {
  target          = google_pubsub_topic.finalize_jobs
  override_during = plan
  values = {
    id = "projects/test-project/topics/rrstitch-finalize-jobs"
  }
}

override_resource {
  target          = google_pubsub_topic.finalize_dead_letters
  override_during = plan
  values = {
    id = "projects/test-project/topics/rrstitch-finalize-jobs-dead-letter"
  }
}

override_resource {
  target          = google_service_account.queue_push
  override_during = plan
  values = {
    email = "rrstitch-queue-push@test-project.iam.gserviceaccount.com"
    name  = "projects/test-project/serviceAccounts/rrstitch-queue-push@test-project.iam.gserviceaccount.com"
  }
}

# ---------------------------------------------------------------------------------------------
# The defaults, as the example deploys them.

run "ingest_path_identities_schedules_indexes_env" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  # --- chunk bucket → notification → topic → push subscription → ingest POST /pubsub

  assert {
    condition = (
      google_storage_notification.chunk_finalized[0].bucket == google_storage_bucket.chunks.name
      && google_storage_bucket.chunks.name == "test-project-rrstitch-chunks"
      && google_storage_notification.chunk_finalized[0].topic == google_pubsub_topic.chunk_events[0].id
      && google_storage_notification.chunk_finalized[0].event_types == toset(["OBJECT_FINALIZE"])
      && google_storage_notification.chunk_finalized[0].payload_format == "JSON_API_V1"
      && google_storage_notification.chunk_finalized[0].object_name_prefix == null
    )
    error_message = "The chunk bucket must notify OBJECT_FINALIZE (JSON_API_V1, every object) to the chunk-events topic."
  }

  assert {
    condition     = google_storage_notification.chunk_finalized[0].bucket != google_storage_bucket.results.name
    error_message = "The notification must be on the chunk bucket, not the results bucket."
  }

  assert {
    condition = (
      length(google_storage_notification.chunk_finalized) == 1
      && length(google_pubsub_subscription.ingest_push) == 1
      && length(google_pubsub_subscription.dead_letters_hold) == 1
      && length(google_eventarc_trigger.chunk_finalized) == 0
      && contains(keys(google_project_service.apis), "pubsub.googleapis.com")
      && !contains(keys(google_project_service.apis), "eventarc.googleapis.com")
      && output.ingest_trigger == "pubsub"
      && output.eventarc_trigger == null
    )
    error_message = "ingest_trigger = \"pubsub\" (the default) must create the push route with its dead letters, and no Eventarc trigger nor the Eventarc API."
  }

  assert {
    condition = (
      google_pubsub_subscription.ingest_push[0].topic == google_pubsub_topic.chunk_events[0].id
      && google_pubsub_subscription.ingest_push[0].push_config[0].push_endpoint == "https://rrstitch-ingest-test.a.run.app/pubsub"
      && google_pubsub_subscription.ingest_push[0].push_config[0].oidc_token[0].service_account_email == google_service_account.trigger.email
      && google_pubsub_subscription.ingest_push[0].push_config[0].oidc_token[0].audience == google_cloud_run_v2_service.ingest.uri
      && length(google_pubsub_subscription.ingest_push[0].push_config[0].no_wrapper) == 0
    )
    error_message = "The push subscription must POST the wrapped envelope to <ingest>/pubsub with an OIDC token of the trigger account (audience: the ingest URL), got ${jsonencode(google_pubsub_subscription.ingest_push[0].push_config)}."
  }

  assert {
    condition = (
      google_pubsub_subscription.ingest_push[0].ack_deadline_seconds == 60
      && google_pubsub_subscription.ingest_push[0].retry_policy[0].minimum_backoff == "10s"
      && google_pubsub_subscription.ingest_push[0].retry_policy[0].maximum_backoff == "600s"
      && google_pubsub_subscription.ingest_push[0].dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.dead_letters[0].id
      && google_pubsub_subscription.ingest_push[0].dead_letter_policy[0].max_delivery_attempts == 10
      && google_pubsub_subscription.ingest_push[0].expiration_policy[0].ttl == ""
    )
    error_message = "The push subscription must wait the ingest timeout, retry 10 s to 600 s, dead-letter after 10 deliveries to the dead-letter topic and never expire."
  }

  assert {
    condition = (
      google_pubsub_subscription.dead_letters_hold[0].topic == google_pubsub_topic.dead_letters[0].id
      && google_pubsub_subscription.dead_letters_hold[0].message_retention_duration == "604800s"
      && google_pubsub_subscription.dead_letters_hold[0].expiration_policy[0].ttl == ""
      && length(google_pubsub_subscription.dead_letters_hold[0].push_config) == 0
    )
    error_message = "The dead-letter topic must have a never-expiring pull subscription keeping dead letters 7 days."
  }

  # --- who may do what: every grant the module makes, exactly

  assert {
    condition = toset([
      for g in concat([
        google_storage_bucket_iam_member.ingest_chunks_viewer,
        google_project_iam_member.ingest_datastore_user,
        google_storage_bucket_iam_member.finalize_chunks_viewer,
        google_storage_bucket_iam_member.finalize_results_user,
        google_project_iam_member.finalize_datastore_user,
        google_cloud_run_v2_service_iam_member.trigger_invokes_ingest,
        google_service_account_iam_member.pubsub_agent_mints_trigger_tokens,
        google_cloud_run_v2_service_iam_member.scheduler_invokes_finalize,
        ], values(google_cloud_run_v2_service_iam_member.manual_finalize),
        google_pubsub_topic_iam_member.gcs_publishes_chunk_events,
        google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
        google_pubsub_subscription_iam_member.pubsub_agent_acks_ingest_push,
        google_project_iam_member.trigger_receives_events,
        google_project_iam_member.gcs_publishes_eventarc_events,
        google_pubsub_topic_iam_member.finalize_publishes_jobs,
        google_cloud_run_v2_service_iam_member.queue_push_invokes_finalize,
        google_service_account_iam_member.pubsub_agent_mints_queue_push_tokens,
        google_pubsub_topic_iam_member.pubsub_agent_publishes_finalize_dead_letters,
      google_pubsub_subscription_iam_member.pubsub_agent_acks_finalize_push) :
      "${g.member} ${g.role} ${try(g.bucket, g.topic, g.subscription, g.service_account_id, g.name, "project ${g.project}")}"
      ]) == toset([
      "serviceAccount:rrstitch-ingest@test-project.iam.gserviceaccount.com roles/storage.objectUser test-project-rrstitch-chunks",
      "serviceAccount:rrstitch-ingest@test-project.iam.gserviceaccount.com roles/datastore.user project test-project",
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/storage.objectUser test-project-rrstitch-chunks",
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/storage.objectUser test-project-rrstitch-results",
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/datastore.user project test-project",
      "serviceAccount:rrstitch-trigger@test-project.iam.gserviceaccount.com roles/run.invoker rrstitch-ingest",
      "serviceAccount:rrstitch-scheduler@test-project.iam.gserviceaccount.com roles/run.invoker rrstitch-finalize",
      "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com roles/pubsub.publisher rrstitch-chunk-events",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/iam.serviceAccountTokenCreator projects/test-project/serviceAccounts/rrstitch-trigger@test-project.iam.gserviceaccount.com",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/pubsub.publisher rrstitch-chunk-events-dead-letter",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/pubsub.subscriber rrstitch-ingest-push",
    ])
    error_message = "Each identity must have exactly its roles, each on its one resource (README, Who may do what)."
  }

  assert {
    condition = (
      google_project_iam_member.ingest_datastore_user.project == "test-project"
      && google_project_iam_member.finalize_datastore_user.project == "test-project"
      && google_cloud_run_v2_service_iam_member.trigger_invokes_ingest.location == google_cloud_run_v2_service.ingest.location
      && google_cloud_run_v2_service_iam_member.scheduler_invokes_finalize.location == google_cloud_run_v2_service.finalize.location
      && google_pubsub_topic_iam_member.gcs_publishes_chunk_events[0].project == "test-project"
      && google_pubsub_subscription_iam_member.pubsub_agent_acks_ingest_push[0].project == "test-project"
      && length(google_cloud_run_v2_service_iam_member.manual_finalize) == 0
    )
    error_message = "The grants must be in the module's project and region, and nobody may POST /finalize by hand unless named."
  }

  assert {
    condition = (
      google_service_account.ingest.account_id == "rrstitch-ingest"
      && google_service_account.finalize.account_id == "rrstitch-finalize"
      && google_service_account.trigger.account_id == "rrstitch-trigger"
      && google_service_account.scheduler.account_id == "rrstitch-scheduler"
      && google_cloud_run_v2_service.ingest.template[0].service_account == google_service_account.ingest.email
      && google_cloud_run_v2_service.finalize.template[0].service_account == google_service_account.finalize.email
    )
    error_message = "Each service must run as its own service account."
  }

  assert {
    condition = (
      google_cloud_run_v2_service.ingest.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"
      && google_cloud_run_v2_service.finalize.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"
      && google_cloud_run_v2_service.ingest.invoker_iam_disabled == null
      && google_cloud_run_v2_service.finalize.invoker_iam_disabled == null
      && google_storage_bucket.chunks.public_access_prevention == "enforced"
      && google_storage_bucket.results.public_access_prevention == "enforced"
      && google_storage_bucket.chunks.uniform_bucket_level_access
      && google_storage_bucket.results.uniform_bucket_level_access
    )
    error_message = "Nothing may be public: internal-only services with IAM enforced, buckets with public access prevented."
  }

  # --- Cloud Scheduler → finalize, with OIDC tokens of the scheduler account

  assert {
    condition = (
      google_cloud_scheduler_job.sweep.schedule == "*/5 * * * *"
      && google_cloud_scheduler_job.sweep.region == "europe-west1"
      && google_cloud_scheduler_job.sweep.http_target[0].http_method == "POST"
      && google_cloud_scheduler_job.sweep.http_target[0].uri == "https://rrstitch-finalize-test.a.run.app/sweep"
      && google_cloud_scheduler_job.sweep.http_target[0].oidc_token[0].service_account_email == google_service_account.scheduler.email
      && google_cloud_scheduler_job.sweep.http_target[0].oidc_token[0].audience == google_cloud_run_v2_service.finalize.uri
      && length(google_cloud_scheduler_job.sweep.http_target[0].oauth_token) == 0
      && google_cloud_scheduler_job.sweep.retry_config[0].retry_count == 0
      && google_cloud_scheduler_job.sweep.attempt_deadline == "900s"
    )
    error_message = "The sweep job must POST <finalize>/sweep every 5 minutes with an OIDC token of the scheduler account, got ${jsonencode(google_cloud_scheduler_job.sweep.http_target)}."
  }

  assert {
    condition = (
      google_cloud_scheduler_job.reconcile.schedule == "17 3 * * *"
      && google_cloud_scheduler_job.reconcile.http_target[0].http_method == "POST"
      && google_cloud_scheduler_job.reconcile.http_target[0].uri == "https://rrstitch-finalize-test.a.run.app/reconcile"
      && google_cloud_scheduler_job.reconcile.http_target[0].oidc_token[0].service_account_email == google_service_account.scheduler.email
      && google_cloud_scheduler_job.reconcile.http_target[0].oidc_token[0].audience == google_cloud_run_v2_service.finalize.uri
      && google_cloud_scheduler_job.reconcile.retry_config[0].retry_count == 2
    )
    error_message = "The reconcile job must POST <finalize>/reconcile daily with an OIDC token of the scheduler account, got ${jsonencode(google_cloud_scheduler_job.reconcile.http_target)}."
  }

  # --- the Firestore indexes the session index queries (shared/src/index/firestore/)

  assert {
    condition = toset([
      for i in [google_firestore_index.open_by_shard_last_chunk, google_firestore_index.finalizing_by_shard_lease, google_firestore_index.sessions_by_shard_recent] :
      join(",", [for f in i.fields : "${f.field_path}:${f.order}"])
      if i.collection == "rrstitch_sessions" && i.query_scope == "COLLECTION" && i.database == google_firestore_database.index[0].name
      ]) == toset([
      "shard:ASCENDING,status:ASCENDING,last_chunk_at:ASCENDING",
      "shard:ASCENDING,status:ASCENDING,lease_until:ASCENDING",
      "shard:ASCENDING,last_chunk_at:DESCENDING",
    ])
    error_message = "The composite indexes on rrstitch_sessions must be exactly the index's queries, each led by the shard: (shard, status, last_chunk_at), (shard, status, lease_until), (shard, last_chunk_at DESC)."
  }

  assert {
    condition = toset([
      for f in [
        google_firestore_field.last_chunk_at, google_firestore_field.lease_until, google_firestore_field.finalized_at,
        google_firestore_field.first_chunk_time, google_firestore_field.last_chunk_time,
        google_firestore_field.chunks_recorded_at, google_firestore_field.chunks_name,
        google_firestore_field.chunks_generation, google_firestore_field.chunks_timestamp,
      ] :
      "${f.collection}.${f.field}" if length(f.index_config) == 1 && length(f.index_config[0].indexes) == 0
      ]) == toset([
      "rrstitch_sessions.last_chunk_at", "rrstitch_sessions.lease_until", "rrstitch_sessions.finalized_at",
      "rrstitch_sessions.first_chunk_time", "rrstitch_sessions.last_chunk_time",
      "chunks.recorded_at", "chunks.name", "chunks.generation", "chunks.timestamp",
    ])
    error_message = "Every sequential field of the sessions and their chunks must have its single-field indexes exempted (an empty index_config)."
  }

  assert {
    condition = (
      google_firestore_database.index[0].name == "(default)"
      && google_firestore_database.index[0].type == "FIRESTORE_NATIVE"
      && google_firestore_database.index[0].location_id == "europe-west1"
      && google_firestore_database.index[0].delete_protection_state == "DELETE_PROTECTION_ENABLED"
    )
    error_message = "The session index must be a protected Native-mode (default) database in the region."
  }

  assert {
    condition = toset([
      for f in [google_firestore_field.expire_at, google_firestore_field.chunks_expire_at, google_firestore_field.rejected_expire_at] :
      f.collection if f.field == "expire_at" && length(f.ttl_config) == 1 && length(f.index_config) == 1
    ]) == toset(["rrstitch_sessions", "chunks", "rrstitch_sessions_rejected"])
    error_message = "expire_at must be a TTL field on the sessions, their chunks and the rejected objects."
  }

  # --- the variables each function reads (shared/src/config.rs)

  assert {
    condition = tomap({ for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e.name => e.value }) == tomap({
      RRSTITCH_CHUNKS               = "gs://test-project-rrstitch-chunks"
      RRSTITCH_INDEX                = "firestore"
      RRSTITCH_FIRESTORE_PROJECT    = "test-project"
      RRSTITCH_FIRESTORE_DATABASE   = "(default)"
      RRSTITCH_FIRESTORE_COLLECTION = "rrstitch_sessions"
      RRSTITCH_MAX_CHUNK_BYTES      = "67108864"
      RRSTITCH_INDEX_TTL_DAYS       = "31"
      RRSTITCH_LOG_FORMAT           = "json"
    })
    error_message = "ingest's environment: ${jsonencode({ for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e.name => e.value })}."
  }

  assert {
    condition = tomap({ for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.name => e.value }) == tomap({
      RRSTITCH_CHUNKS               = "gs://test-project-rrstitch-chunks"
      RRSTITCH_RESULTS              = "gs://test-project-rrstitch-results"
      RRSTITCH_INDEX                = "firestore"
      RRSTITCH_FIRESTORE_PROJECT    = "test-project"
      RRSTITCH_FIRESTORE_DATABASE   = "(default)"
      RRSTITCH_FIRESTORE_COLLECTION = "rrstitch_sessions"
      RRSTITCH_IDLE_SECS            = "300"
      RRSTITCH_LEASE_SECS           = "600"
      RRSTITCH_MAX_CHUNK_BYTES      = "67108864"
      RRSTITCH_INDEX_TTL_DAYS       = "31"
      RRSTITCH_OUTPUT_GZIP          = "false"
      RRSTITCH_SEGMENTS             = "true"
      RRSTITCH_SWEEP_BUDGET_SECS    = "720"
      RRSTITCH_FINALIZE_MODE        = "inline"
      RRSTITCH_LOG_FORMAT           = "json"
    })
    error_message = "finalize's environment: ${jsonencode({ for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.name => e.value })}."
  }

  assert {
    condition = (
      length(google_pubsub_topic.finalize_jobs) == 0
      && length(google_pubsub_topic.finalize_dead_letters) == 0
      && length(google_pubsub_subscription.finalize_push) == 0
      && length(google_service_account.queue_push) == 0
    )
    error_message = "Inline mode (the default) must create no finalize queue."
  }

  assert {
    condition = (
      google_cloud_run_v2_service.ingest.template[0].containers[0].image == var.ingest_image
      && google_cloud_run_v2_service.finalize.template[0].containers[0].image == var.finalize_image
      && google_cloud_run_v2_service.ingest.template[0].containers[0].startup_probe[0].http_get[0].path == "/healthz"
      && google_cloud_run_v2_service.finalize.template[0].containers[0].startup_probe[0].http_get[0].path == "/healthz"
      && google_cloud_run_v2_service.ingest.template[0].timeout == "60s"
      && google_cloud_run_v2_service.finalize.template[0].timeout == "900s"
    )
    error_message = "Each service must run its own image, probe /healthz and have its timeout."
  }
}

# ---------------------------------------------------------------------------------------------
# Queue mode: the sweep dispatches to a Pub/Sub topic, a push subscription delivers each
# message to finalize's /pubsub/finalize, with a dead-letter topic held by a pull subscription.

run "finalize_queue_mode" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    finalize_mode = "queue"
  }

  assert {
    condition = (
      google_pubsub_topic.finalize_jobs[0].name == "rrstitch-finalize-jobs"
      && google_pubsub_topic.finalize_dead_letters[0].name == "rrstitch-finalize-jobs-dead-letter"
      && google_pubsub_subscription.finalize_push[0].topic == google_pubsub_topic.finalize_jobs[0].id
      && google_pubsub_subscription.finalize_push[0].push_config[0].push_endpoint == "https://rrstitch-finalize-test.a.run.app/pubsub/finalize"
      && google_pubsub_subscription.finalize_push[0].push_config[0].oidc_token[0].service_account_email == "rrstitch-queue-push@test-project.iam.gserviceaccount.com"
      && google_pubsub_subscription.finalize_push[0].push_config[0].oidc_token[0].audience == google_cloud_run_v2_service.finalize.uri
      && length(google_pubsub_subscription.finalize_push[0].push_config[0].no_wrapper) == 0
    )
    error_message = "The finalize push subscription must POST the wrapped envelope to <finalize>/pubsub/finalize with an OIDC token of the queue-push account, got ${jsonencode(google_pubsub_subscription.finalize_push[0].push_config)}."
  }

  assert {
    condition = (
      google_pubsub_subscription.finalize_push[0].ack_deadline_seconds == 600
      && google_pubsub_subscription.finalize_push[0].retry_policy[0].minimum_backoff == "10s"
      && google_pubsub_subscription.finalize_push[0].dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.finalize_dead_letters[0].id
      && google_pubsub_subscription.finalize_push[0].dead_letter_policy[0].max_delivery_attempts == 5
      && google_pubsub_subscription.finalize_push[0].expiration_policy[0].ttl == ""
      && google_pubsub_subscription.finalize_dead_letters_hold[0].topic == google_pubsub_topic.finalize_dead_letters[0].id
      && length(google_pubsub_subscription.finalize_dead_letters_hold[0].push_config) == 0
      && google_pubsub_subscription.finalize_dead_letters_hold[0].message_retention_duration == "604800s"
    )
    error_message = "The finalize push must wait a stitch (the 900 s timeout, capped at 600 s), dead-letter after 5 deliveries, and the dead letters must be held 7 days."
  }

  assert {
    condition = (
      [for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.value if e.name == "RRSTITCH_FINALIZE_MODE"] == ["queue"]
      && [for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.value if e.name == "RRSTITCH_FINALIZE_TOPIC"] == ["projects/test-project/topics/rrstitch-finalize-jobs"]
      && length([for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e if contains(["RRSTITCH_FINALIZE_MODE", "RRSTITCH_FINALIZE_TOPIC"], e.name)]) == 0
      && google_cloud_run_v2_service.finalize.template[0].max_instance_request_concurrency == 4
    )
    error_message = "In queue mode finalize must read RRSTITCH_FINALIZE_MODE=queue and RRSTITCH_FINALIZE_TOPIC (the jobs topic) and stitch at most 4 sessions per instance; ingest reads neither."
  }

  assert {
    condition = toset([
      for g in concat(
        google_pubsub_topic_iam_member.finalize_publishes_jobs,
        google_cloud_run_v2_service_iam_member.queue_push_invokes_finalize,
        google_service_account_iam_member.pubsub_agent_mints_queue_push_tokens,
        google_pubsub_topic_iam_member.pubsub_agent_publishes_finalize_dead_letters,
        google_pubsub_subscription_iam_member.pubsub_agent_acks_finalize_push,
      ) :
      "${g.member} ${g.role} ${try(g.topic, g.subscription, g.service_account_id, g.name)}"
      ]) == toset([
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/pubsub.publisher rrstitch-finalize-jobs",
      "serviceAccount:rrstitch-queue-push@test-project.iam.gserviceaccount.com roles/run.invoker rrstitch-finalize",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/iam.serviceAccountTokenCreator projects/test-project/serviceAccounts/rrstitch-queue-push@test-project.iam.gserviceaccount.com",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/pubsub.publisher rrstitch-finalize-jobs-dead-letter",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/pubsub.subscriber rrstitch-finalize-push",
    ])
    error_message = "Queue mode must grant exactly: finalize publishes to the jobs topic, the queue-push account invokes finalize, the Pub/Sub agent mints its tokens and dead-letters."
  }

  assert {
    condition = (
      google_service_account.queue_push[0].account_id == "rrstitch-queue-push"
      && google_cloud_scheduler_job.sweep.http_target[0].uri == "https://rrstitch-finalize-test.a.run.app/sweep"
    )
    error_message = "Queue mode keeps the scheduled POST /sweep (it dispatches) and pushes as its own account."
  }
}

# ---------------------------------------------------------------------------------------------
# ingest_trigger = "eventarc": an Eventarc trigger on the chunk bucket's finalized objects
# POSTs CloudEvents to ingest's / as the trigger account; none of the push route exists, and
# without a dead-letter topic there is no dead-letter alert (the reconcile is the safety net).

run "ingest_through_eventarc" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    ingest_trigger = "eventarc"
  }

  assert {
    condition = (
      length(google_eventarc_trigger.chunk_finalized) == 1
      && google_eventarc_trigger.chunk_finalized[0].name == "rrstitch-chunk-finalized"
      && google_eventarc_trigger.chunk_finalized[0].project == "test-project"
      && google_eventarc_trigger.chunk_finalized[0].location == "europe-west1"
      && toset([for m in google_eventarc_trigger.chunk_finalized[0].matching_criteria : "${m.attribute}=${m.value}"]) == toset([
        "type=google.cloud.storage.object.v1.finalized",
        "bucket=test-project-rrstitch-chunks",
      ])
      && google_eventarc_trigger.chunk_finalized[0].event_data_content_type == "application/json"
    )
    error_message = "The Eventarc trigger must be in the chunk bucket's location and match finalized objects of the chunk bucket (JSON data), got ${jsonencode(google_eventarc_trigger.chunk_finalized[*].matching_criteria)}."
  }

  assert {
    condition = (
      google_eventarc_trigger.chunk_finalized[0].destination[0].cloud_run_service[0].service == google_cloud_run_v2_service.ingest.name
      && google_eventarc_trigger.chunk_finalized[0].destination[0].cloud_run_service[0].region == "europe-west1"
      && google_eventarc_trigger.chunk_finalized[0].destination[0].cloud_run_service[0].path == "/"
      && google_eventarc_trigger.chunk_finalized[0].service_account == "rrstitch-trigger@test-project.iam.gserviceaccount.com"
    )
    error_message = "The Eventarc trigger must deliver to ingest's / (its CloudEvents route) in the region, as the trigger account, got ${jsonencode(google_eventarc_trigger.chunk_finalized[0].destination)}."
  }

  assert {
    condition = (
      length(google_storage_notification.chunk_finalized) == 0
      && length(google_pubsub_topic.chunk_events) == 0
      && length(google_pubsub_subscription.ingest_push) == 0
      && length(google_pubsub_topic.dead_letters) == 0
      && length(google_pubsub_subscription.dead_letters_hold) == 0
      && length(google_monitoring_alert_policy.dead_letters) == 0
      && output.chunk_events_topic == null
      && output.ingest_push_subscription == null
      && output.dead_letter_subscription == null
      && output.eventarc_trigger == "rrstitch-chunk-finalized"
    )
    error_message = "With Eventarc there must be no notification, chunk-events topic, push subscription, dead-letter topic or hold, nor a dead-letter alert with nothing to watch."
  }

  assert {
    condition = (
      contains(keys(google_project_service.apis), "eventarc.googleapis.com")
      && contains(keys(google_project_service.apis), "pubsub.googleapis.com")
    )
    error_message = "Eventarc mode must enable the Eventarc API (and keep Pub/Sub, its transport)."
  }

  # Every grant, exactly: the push route's Pub/Sub grants are gone; the trigger account may
  # receive events, the Cloud Storage agent may publish to Eventarc's topic, and the Pub/Sub
  # agent still mints the trigger account's tokens (Eventarc pushes through Pub/Sub).
  assert {
    condition = toset([
      for g in concat([
        google_storage_bucket_iam_member.ingest_chunks_viewer,
        google_project_iam_member.ingest_datastore_user,
        google_storage_bucket_iam_member.finalize_chunks_viewer,
        google_storage_bucket_iam_member.finalize_results_user,
        google_project_iam_member.finalize_datastore_user,
        google_cloud_run_v2_service_iam_member.trigger_invokes_ingest,
        google_service_account_iam_member.pubsub_agent_mints_trigger_tokens,
        google_cloud_run_v2_service_iam_member.scheduler_invokes_finalize,
        ], values(google_cloud_run_v2_service_iam_member.manual_finalize),
        google_pubsub_topic_iam_member.gcs_publishes_chunk_events,
        google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
        google_pubsub_subscription_iam_member.pubsub_agent_acks_ingest_push,
        google_project_iam_member.trigger_receives_events,
        google_project_iam_member.gcs_publishes_eventarc_events,
        google_pubsub_topic_iam_member.finalize_publishes_jobs,
        google_cloud_run_v2_service_iam_member.queue_push_invokes_finalize,
        google_service_account_iam_member.pubsub_agent_mints_queue_push_tokens,
        google_pubsub_topic_iam_member.pubsub_agent_publishes_finalize_dead_letters,
      google_pubsub_subscription_iam_member.pubsub_agent_acks_finalize_push) :
      "${g.member} ${g.role} ${try(g.bucket, g.topic, g.subscription, g.service_account_id, g.name, "project ${g.project}")}"
      ]) == toset([
      "serviceAccount:rrstitch-ingest@test-project.iam.gserviceaccount.com roles/storage.objectUser test-project-rrstitch-chunks",
      "serviceAccount:rrstitch-ingest@test-project.iam.gserviceaccount.com roles/datastore.user project test-project",
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/storage.objectUser test-project-rrstitch-chunks",
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/storage.objectUser test-project-rrstitch-results",
      "serviceAccount:rrstitch-finalize@test-project.iam.gserviceaccount.com roles/datastore.user project test-project",
      "serviceAccount:rrstitch-trigger@test-project.iam.gserviceaccount.com roles/run.invoker rrstitch-ingest",
      "serviceAccount:rrstitch-trigger@test-project.iam.gserviceaccount.com roles/eventarc.eventReceiver project test-project",
      "serviceAccount:rrstitch-scheduler@test-project.iam.gserviceaccount.com roles/run.invoker rrstitch-finalize",
      "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com roles/pubsub.publisher project test-project",
      "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com roles/iam.serviceAccountTokenCreator projects/test-project/serviceAccounts/rrstitch-trigger@test-project.iam.gserviceaccount.com",
    ])
    error_message = "With Eventarc each identity must have exactly its roles (README, Who may do what)."
  }

  assert {
    condition = (
      google_cloud_scheduler_job.reconcile.http_target[0].uri == "https://rrstitch-finalize-test.a.run.app/reconcile"
      && google_cloud_scheduler_job.reconcile.schedule == "17 3 * * *"
      && google_cloud_run_v2_service.ingest.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    )
    error_message = "With Eventarc the daily reconcile is the safety net, and ingest stays internal-only (Eventarc is an internal caller)."
  }
}

# Eventarc beside queue mode, a chunk prefix and a multi-region bucket: the trigger follows the
# bucket's location, still filters by bucket only (ingest applies the prefix), and the
# dead-letter alert watches the one hold subscription left, the finalize jobs'.
run "eventarc_with_queue_mode_a_prefix_and_a_multi_region_bucket" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    ingest_trigger  = "eventarc"
    finalize_mode   = "queue"
    chunk_prefix    = "chunks/"
    bucket_location = "EU"
  }

  assert {
    condition = (
      google_storage_bucket.chunks.location == "EU"
      && google_eventarc_trigger.chunk_finalized[0].location == "eu"
      && google_eventarc_trigger.chunk_finalized[0].destination[0].cloud_run_service[0].region == "europe-west1"
    )
    error_message = "A Cloud Storage trigger must be in its bucket's location (eu), delivering to ingest in its region."
  }

  assert {
    condition = (
      toset([for m in google_eventarc_trigger.chunk_finalized[0].matching_criteria : m.attribute]) == toset(["type", "bucket"])
      && [for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e.value if e.name == "RRSTITCH_CHUNK_PREFIX"] == ["chunks/"]
    )
    error_message = "Eventarc cannot filter by prefix: the trigger matches type and bucket, and ingest reads RRSTITCH_CHUNK_PREFIX to ignore other names."
  }

  assert {
    condition = (
      length(google_monitoring_alert_policy.dead_letters) == 1
      && length(google_monitoring_alert_policy.dead_letters[0].conditions) == 1
      && strcontains(google_monitoring_alert_policy.dead_letters[0].conditions[0].condition_threshold[0].filter, "resource.labels.subscription_id=\"rrstitch-finalize-jobs-dead-letter-hold\"")
      && length(google_pubsub_subscription.finalize_dead_letters_hold) == 1
    )
    error_message = "With Eventarc in queue mode the dead-letter alert must watch the finalize jobs' hold subscription, and only it."
  }
}

# Negative control: a value other than pubsub or eventarc fails the plan.
run "ingest_trigger_must_be_pubsub_or_eventarc" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    ingest_trigger = "cloudevent"
  }

  expect_failures = [var.ingest_trigger]
}

# ---------------------------------------------------------------------------------------------
# A chunk prefix and a manual invoker.

run "chunk_prefix_and_manual_invoker" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    chunk_prefix             = "chunks/"
    manual_finalize_invokers = ["group:rrstitch-operators@example.com"]
  }

  assert {
    condition     = google_storage_notification.chunk_finalized[0].object_name_prefix == "chunks/"
    error_message = "The notification must filter on chunk_prefix."
  }

  assert {
    condition = (
      [for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e.value if e.name == "RRSTITCH_CHUNK_PREFIX"] == ["chunks/"]
      && [for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.value if e.name == "RRSTITCH_CHUNK_PREFIX"] == ["chunks/"]
    )
    error_message = "Both services must read RRSTITCH_CHUNK_PREFIX when chunk_prefix is set."
  }

  assert {
    condition = [
      for g in values(google_cloud_run_v2_service_iam_member.manual_finalize) : "${g.member} ${g.role} ${g.name}"
    ] == ["group:rrstitch-operators@example.com roles/run.invoker rrstitch-finalize"]
    error_message = "A manual invoker must get roles/run.invoker on finalize, and nothing else."
  }
}

# ---------------------------------------------------------------------------------------------
# allUsers may not invoke finalize: the module refuses the plan.

run "public_invoker_refused" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    manual_finalize_invokers = ["allUsers"]
  }

  expect_failures = [var.manual_finalize_invokers]
}

run "redaction_rules_reach_finalize_only" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    redact_rules = "{\"mask_inputs\": true}"
  }

  assert {
    condition = (
      [for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.value if e.name == "RRSTITCH_REDACT"] == ["{\"mask_inputs\": true}"]
      && length([for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e if e.name == "RRSTITCH_REDACT"]) == 0
    )
    error_message = "redact_rules must reach finalize (the one that stitches) as RRSTITCH_REDACT, and only finalize."
  }
}

run "redaction_rules_must_be_json" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    redact_rules = "mask everything"
  }

  expect_failures = [var.redact_rules]
}

# Storage tiers: by default results move from STANDARD to NEARLINE after 30 days and are
# kept; chunks stay in STANDARD until chunk_retention_days deletes them.
run "storage_tiers_default" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  assert {
    condition = (
      [for r in google_storage_bucket.results.lifecycle_rule : jsonencode([one(r.action).type, one(r.action).storage_class, one(r.condition).age, one(r.condition).matches_storage_class])]
      == [jsonencode(["SetStorageClass", "NEARLINE", 30, ["STANDARD"]])]
    )
    error_message = "Results move to NEARLINE after 30 days, once (only STANDARD objects), and are never deleted by default."
  }
  assert {
    condition = (
      [for r in google_storage_bucket.chunks.lifecycle_rule : jsonencode([one(r.action).type, one(r.condition).age])]
      == [jsonencode(["Delete", 30])]
    )
    error_message = "Chunks stay in STANDARD by default and are deleted after chunk_retention_days (30)."
  }
}

run "storage_tiers_cold_chunks_before_their_deletion" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    chunk_cold_after_days      = 7
    chunk_cold_storage_class   = "COLDLINE"
    results_cold_storage_class = "COLDLINE"
    results_cold_after_days    = 90
    results_retention_days     = 400
  }

  assert {
    condition = (
      toset([for r in google_storage_bucket.chunks.lifecycle_rule : jsonencode([one(r.action).type, one(r.action).storage_class, one(r.condition).age])])
      == toset([jsonencode(["Delete", null, 30]), jsonencode(["SetStorageClass", "COLDLINE", 7])])
    )
    error_message = "Chunks move to COLDLINE after 7 days and are deleted after 30."
  }
  assert {
    condition = (
      toset([for r in google_storage_bucket.results.lifecycle_rule : jsonencode([one(r.action).type, one(r.action).storage_class, one(r.condition).age])])
      == toset([jsonencode(["Delete", null, 400]), jsonencode(["SetStorageClass", "COLDLINE", 90])])
    )
    error_message = "Results move to COLDLINE after 90 days and are deleted after 400."
  }
}

# Negative controls: a move after the deletion, and ARCHIVE, fail the plan.
run "storage_tier_after_deletion_refused" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    chunk_cold_after_days = 30
  }

  expect_failures = [google_storage_bucket.chunks]
}

run "storage_tier_archive_refused" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    results_cold_storage_class = "ARCHIVE"
  }

  expect_failures = [var.results_cold_storage_class]
}

run "restriction_rules_reach_both_services" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    restrict_rules = "{\"drop_environments\": [\"staging\"]}"
  }

  assert {
    condition = (
      [for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e.value if e.name == "RRSTITCH_RESTRICT"] == ["{\"drop_environments\": [\"staging\"]}"]
      && [for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.value if e.name == "RRSTITCH_RESTRICT"] == ["{\"drop_environments\": [\"staging\"]}"]
    )
    error_message = "restrict_rules must reach ingest and finalize (whose reconcile ingests too) as RRSTITCH_RESTRICT."
  }
}

run "restriction_rules_must_be_json" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    restrict_rules = "drop staging"
  }

  expect_failures = [var.restrict_rules]
}

run "a_session_quota_reaches_both_services" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    session_max_bytes = 536870912
  }

  assert {
    condition = (
      [for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e.value if e.name == "RRSTITCH_SESSION_MAX_BYTES"] == ["536870912"]
      && [for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e.value if e.name == "RRSTITCH_SESSION_MAX_BYTES"] == ["536870912"]
    )
    error_message = "session_max_bytes must reach ingest and finalize (whose reconcile ingests and whose results warn) as RRSTITCH_SESSION_MAX_BYTES."
  }
}

run "no_session_quota_no_variable" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    session_max_bytes = 0
  }

  assert {
    condition = (
      length([for e in google_cloud_run_v2_service.ingest.template[0].containers[0].env : e if e.name == "RRSTITCH_SESSION_MAX_BYTES"]) == 0
      && length([for e in google_cloud_run_v2_service.finalize.template[0].containers[0].env : e if e.name == "RRSTITCH_SESSION_MAX_BYTES"]) == 0
    )
    error_message = "without a quota (0, like the default null) RRSTITCH_SESSION_MAX_BYTES is left out."
  }
}

run "a_session_quota_must_be_whole_bytes" {
  command = plan

  module {
    source = "../modules/rrstitch"
  }

  variables {
    session_max_bytes = 1.5
  }

  expect_failures = [var.session_max_bytes]
}
