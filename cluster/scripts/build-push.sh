#!/usr/bin/env bash
# Build the eksfold-worker, eksfold-worker-openfold3 and eksfold-notebook images and push them
# to ECR (one IMAGE_TAG: the executor finds a family's inference image beside the base one).
#
#   cluster/scripts/build-push.sh [--no-push] [ENV_FILE]      ENV_FILE defaults to cluster/env.sh
#
# Needs docker (BuildKit) and, to push, the AWS CLI logged in as you (profile or SSO session):
# this script holds no credentials; `aws ecr get-login-password` hands a 12-hour token straight
# to `docker login`. Repositories are created on first use (scan on push, immutable tags: bump
# IMAGE_TAG in env.sh for a new build). The worker build compiles OpenFold's CUDA kernel for
# four GPU architectures: expect 20-40 minutes on 8 cores.
set -euo pipefail

push=1
if [ "${1:-}" = "--no-push" ]; then push=0; shift; fi
here=$(cd "$(dirname "$0")/.." && pwd)
repo_root=$(cd "$here/.." && pwd)
env_file=${1:-$here/env.sh}
# shellcheck disable=SC1090
. "$env_file"
: "${AWS_ACCOUNT_ID:?}" "${AWS_REGION:?}" "${IMAGE_TAG:?}"

registry=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com
worker=$registry/eksfold-worker:$IMAGE_TAG
worker_of3=$registry/eksfold-worker-openfold3:$IMAGE_TAG
notebook=$registry/eksfold-notebook:$IMAGE_TAG

export DOCKER_BUILDKIT=1
cd "$repo_root"
docker build --platform linux/amd64 -f cluster/images/worker/Dockerfile -t "$worker" .
docker build --platform linux/amd64 -f cluster/images/worker-openfold3/Dockerfile \
  --build-arg "BASE=$worker" -t "$worker_of3" .
docker build --platform linux/amd64 -f cluster/images/notebook/Dockerfile \
  --build-arg "WORKER_IMAGE=$worker" -t "$notebook" .
[ "$push" = 1 ] || { echo "built $worker, $worker_of3 and $notebook (not pushed)"; exit 0; }

for name in eksfold-worker eksfold-worker-openfold3 eksfold-notebook; do
  if ! aws ecr describe-repositories --region "$AWS_REGION" --repository-names "$name" >/dev/null 2>&1; then
    aws ecr create-repository --region "$AWS_REGION" --repository-name "$name" \
      --image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE \
      --encryption-configuration encryptionType=AES256 >/dev/null
    echo "created ECR repository $name"
  fi
done
aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$registry"
docker push "$worker"
docker push "$worker_of3"
docker push "$notebook"
echo "pushed $worker, $worker_of3 and $notebook"
