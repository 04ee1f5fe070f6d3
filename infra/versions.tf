terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.50.x only: tests/test_infra_schema.py checks infra/ against the 6.50.0 schema
      # (scripts/provider-schema-requirements.txt). Move both together: docs/terraform.md.
      version = "~> 6.50.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Resources carry the labels they are given, plus these, so a bill can be read by app.
  default_labels = var.labels
}
