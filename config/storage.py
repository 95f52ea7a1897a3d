"""The private storage's configuration, shared by the settings and the tests that prove it."""


def r2_private_storage(
    *, bucket, endpoint_url, access_key, secret_key, ttl, region="auto", addressing_style="path"
):
    """django-storages S3Storage options for Cloudflare R2 (any S3-compatible store works).

    Signed URLs only: no ACLs, no custom domain (that would make URLs unsigned), no overwrites,
    and boto3's checksums only when required (R2 rejects the headers newer boto3 adds).
    """
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region,
            "access_key": access_key,
            "secret_key": secret_key,
            "signature_version": "s3v4",
            "addressing_style": addressing_style,
            "querystring_auth": True,
            "querystring_expire": ttl,
            "default_acl": None,
            "custom_domain": None,
            "file_overwrite": False,
            "client_config": Config(
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": addressing_style},
            ),
        },
    }
