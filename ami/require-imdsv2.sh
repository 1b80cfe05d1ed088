#!/bin/sh
# Fail unless this EC2 instance's metadata service refuses IMDSv1 (token-less) requests.
# The first step of an AMI build: a baked image must never come from a build instance
# whose credentials any process could read without a token.
set -eu
url=http://169.254.169.254/latest/meta-data/
code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" || true)
if [ "$code" = 401 ]; then
    echo "require-imdsv2.sh: IMDSv2 is required on this instance"
    exit 0
fi
echo "require-imdsv2.sh: IMDSv1 answered (HTTP $code): require IMDSv2 for the build instance" \
    "(aws ec2 modify-instance-metadata-defaults --http-tokens required)" >&2
exit 1
