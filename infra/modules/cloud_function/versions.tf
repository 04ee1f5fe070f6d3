terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The release infra/versions.tf pins (and the schema check knows).
      version = "~> 6.50.0"
    }
  }
}
