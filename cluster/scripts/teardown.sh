#!/usr/bin/env bash
# Tear down everything cluster/README.md created, in the order that leaves nothing behind:
# JupyterHub and the namespace (its EBS volumes), Karpenter's nodes, the FSx file system, the
# cluster (VPC, NAT gateway, node group, IRSA roles, Karpenter's IAM), then the two policies.
# Keeps the S3 bucket and the ECR repositories (data and images you may want); prints the
# commands that delete them.
#
#   cluster/scripts/teardown.sh [ENV_FILE] [RENDERED_DIR]
#
# Set EXPORT_FIRST=1 to copy new files from the file system to the bucket before deleting it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:-$here/env.sh}
rendered=${2:-$here/rendered}
# shellcheck disable=SC1090
. "$env_file"
: "${AWS_ACCOUNT_ID:?}" "${AWS_REGION:?}" "${CLUSTER_NAME:?}" "${FSX_ID:?}" "${EKSFOLD_BUCKET:?}"
log() { echo "teardown: $*"; }

if [ "${EXPORT_FIRST:-0}" = 1 ]; then
  log "exporting db/, weights/, runs/ to s3://$EKSFOLD_BUCKET"
  task=$(aws fsx create-data-repository-task --region "$AWS_REGION" --file-system-id "$FSX_ID" \
    --type EXPORT_TO_REPOSITORY --paths db weights runs --report Enabled=false \
    --query DataRepositoryTask.TaskId --output text)
  until state=$(aws fsx describe-data-repository-tasks --region "$AWS_REGION" --task-ids "$task" \
      --query 'DataRepositoryTasks[0].Lifecycle' --output text) && \
      [[ $state =~ ^(SUCCEEDED|FAILED|CANCELED)$ ]]; do sleep 30; done
  log "export $state"
fi

log "JupyterHub, Jobs and the namespace (deletes the notebook home volumes)"
helm uninstall eksfold-hub --namespace eksfold --wait 2>/dev/null || true
kubectl delete namespace eksfold --ignore-not-found --wait=true --timeout=15m
kubectl delete persistentvolume eksfold-fsx --ignore-not-found

log "Karpenter node pools (terminates their nodes)"
kubectl delete -f "$rendered/karpenter/nodepools.yaml" --ignore-not-found --wait=true
kubectl wait --for=delete nodeclaims --all --timeout=15m 2>/dev/null || true
kubectl delete -f "$rendered/karpenter/ec2nodeclasses.yaml" --ignore-not-found --wait=true

log "FSx file system $FSX_ID"
aws fsx delete-file-system --region "$AWS_REGION" --file-system-id "$FSX_ID" >/dev/null || true
while aws fsx describe-file-systems --region "$AWS_REGION" --file-system-ids "$FSX_ID" >/dev/null 2>&1; do
  sleep 20
done

log "cluster $CLUSTER_NAME (eksctl)"
eksctl delete cluster -f "$rendered/eksctl/cluster.yaml" --wait

log "IAM policies"
for p in eksfold-worker eksfold-notebook; do
  aws iam delete-policy --policy-arn "arn:aws:iam::$AWS_ACCOUNT_ID:policy/$CLUSTER_NAME-$p" || true
done

log "done. Kept, delete yourself if you want them gone:"
echo "  aws s3 rb s3://$EKSFOLD_BUCKET --force"
echo "  aws ecr delete-repository --region $AWS_REGION --force --repository-name eksfold-worker"
echo "  aws ecr delete-repository --region $AWS_REGION --force --repository-name eksfold-worker-openfold3"
echo "  aws ecr delete-repository --region $AWS_REGION --force --repository-name eksfold-notebook"
