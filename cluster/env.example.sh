# shellcheck shell=bash disable=SC2034  # sourced by render.sh and the scripts
# eksfold cluster variables. Copy to cluster/env.sh, fill in, then run cluster/render.sh.
# Every ${NAME} placeholder in cluster/ is one of these; render.sh refuses to run while one is
# empty or malformed, and fails if any placeholder survives rendering.
# This file holds names and ids only: never put credentials here (the AWS CLI, eksctl and
# docker take those from your usual AWS profile / SSO session).

AWS_ACCOUNT_ID=123456789012          # 12 digits
AWS_REGION=us-east-1
ZONE_A=us-east-1a                    # FSx for Lustre and the compute node pools live here
ZONE_B=us-east-1b                    # EKS needs a second zone for the control plane subnets
CLUSTER_NAME=eksfold                 # also the prefix of the IAM roles/policies created for it
EKSFOLD_BUCKET=my-eksfold-bucket     # S3 bucket: db/, weights/, runs/ (created in README step 2)
IMAGE_TAG=0.1.0                      # tag of the eksfold-worker / eksfold-notebook images in ECR

# Filled in after the file system exists (README step 6, printed by scripts/create-fsx.sh).
# The placeholders below render, but storage/fsx.yaml is only usable once they are real.
FSX_ID=fs-0123456789abcdef0
FSX_DNS_NAME=fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com
FSX_MOUNT_NAME=abcdefgh
FSX_CAPACITY_GIB=2400                # 1200 or a multiple of 2400 (SCRATCH_2); see README sizes
