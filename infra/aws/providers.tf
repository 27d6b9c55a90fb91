locals {
  # With endpoint_url set (an emulator such as moto), every service this module touches is
  # sent there and the provider skips the calls a fake account cannot answer.
  emulated = var.endpoint_url != null
}

provider "aws" {
  region = var.region

  s3_use_path_style           = local.emulated
  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_requesting_account_id  = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [var.endpoint_url] : []
    content {
      s3             = endpoints.value
      dynamodb       = endpoints.value
      lambda         = endpoints.value
      iam            = endpoints.value
      sts            = endpoints.value
      events         = endpoints.value
      cloudwatchlogs = endpoints.value
      cloudwatch     = endpoints.value
      sqs            = endpoints.value
    }
  }

  default_tags {
    tags = var.tags
  }
}
