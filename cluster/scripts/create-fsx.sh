#!/usr/bin/env bash
# Create the FSx for Lustre file system (rendered/storage/fsx.json) in the cluster's private
# subnet of ZONE_A, with the EKS cluster security group (which every node also has, and which
# admits all traffic between its members: Lustre's ports 988 and 1018-1023 included). Waits until
# it is AVAILABLE (5-10 minutes) and prints the FSX_* lines to put into env.sh.
#
#   cluster/scripts/create-fsx.sh [ENV_FILE] [RENDERED_DIR]
#
# Uses your AWS CLI session; holds no credentials. Running it twice does not create a second
# file system: the request carries a ClientRequestToken.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:-$here/env.sh}
rendered=${2:-$here/rendered}
# shellcheck disable=SC1090
. "$env_file"
: "${AWS_REGION:?}" "${CLUSTER_NAME:?}" "${ZONE_A:?}"

subnet=$(aws ec2 describe-subnets --region "$AWS_REGION" \
  --filters "Name=tag:karpenter.sh/discovery,Values=$CLUSTER_NAME" \
            "Name=tag:kubernetes.io/role/internal-elb,Values=1" \
            "Name=availability-zone,Values=$ZONE_A" \
  --query 'Subnets[0].SubnetId' --output text)
sg=$(aws eks describe-cluster --region "$AWS_REGION" --name "$CLUSTER_NAME" \
  --query cluster.resourcesVpcConfig.clusterSecurityGroupId --output text)
if [ -z "$subnet" ] || [ "$subnet" = None ]; then
  echo "no private subnet tagged karpenter.sh/discovery=$CLUSTER_NAME in $ZONE_A" >&2; exit 1
fi

fs=$(aws fsx create-file-system --region "$AWS_REGION" \
  --cli-input-json "file://$rendered/storage/fsx.json" \
  --subnet-ids "$subnet" --security-group-ids "$sg" \
  --query FileSystem.FileSystemId --output text)
echo "file system $fs: waiting until AVAILABLE"
for _ in $(seq 1 90); do
  state=$(aws fsx describe-file-systems --region "$AWS_REGION" --file-system-ids "$fs" \
    --query 'FileSystems[0].Lifecycle' --output text)
  case "$state" in
    AVAILABLE) break ;;
    FAILED|MISCONFIGURED) echo "file system $fs is $state" >&2; exit 1 ;;
  esac
  sleep 20
done
[ "$state" = AVAILABLE ] || { echo "file system $fs still $state after 30 minutes" >&2; exit 1; }

read -r dns mount < <(aws fsx describe-file-systems --region "$AWS_REGION" --file-system-ids "$fs" \
  --query 'FileSystems[0].[DNSName,LustreConfiguration.MountName]' --output text)
echo "Put these lines into $env_file, then run cluster/render.sh again:"
echo "FSX_ID=$fs"
echo "FSX_DNS_NAME=$dns"
echo "FSX_MOUNT_NAME=$mount"
