terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned exactly: the provider mirror this is tested against (scripts/tf-moto-apply.sh)
      # holds this one version.
      version = "5.100.0"
    }
  }
}
