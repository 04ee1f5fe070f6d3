terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.14 has every argument used here (build_config.service_account, the Firestore
      # TTL field, Cloud Run v2 IAM); a 7.x release may rename them.
      version = "~> 6.14"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Resources carry the labels they are given, plus these, so a bill can be read by app.
  default_labels = var.labels
}
