"""Prepares a freshly started moto server for ftbackup's tests (run by scripts/scratch-s3.sh).

moto is started with INITIAL_NO_AUTH_ACTION_COUNT=3: exactly the three IAM calls below go through
unauthenticated (an IAM user, an inline policy allowing s3:*, an access key); every later request
must be signed with that key, so a wrong secret is refused as AWS would. Prints the key as shell exports.
"""
import json
import sys

import boto3
import botocore.exceptions

endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="ftbackup-test")
iam.put_user_policy(UserName="ftbackup-test", PolicyName="s3-all", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}))
key = iam.create_access_key(UserName="ftbackup-test")["AccessKey"]

# From here on IAM checks are on: the key works, a wrong secret does not.
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.list_buckets()
wrong = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=key["AccessKeyId"], aws_secret_access_key="wrong-secret")
try:
    wrong.list_buckets()
    sys.exit("moto accepted a wrong secret: IAM checks are not on")
except botocore.exceptions.ClientError:
    pass
print(f"export FTBACKUP_TEST_S3_ACCESS_KEY={key['AccessKeyId']}")
print(f"export FTBACKUP_TEST_S3_SECRET_KEY={key['SecretAccessKey']}")
