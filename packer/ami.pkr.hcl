# Bake an AMI with trueup: Debian 12 and Amazon Linux 2023, from the same ami/ scripts the
# local build (local/local.pkr.hcl) runs.
#
#   cd packer && packer build -var bundle=ssm:/trueup/prod -var runlist=base,web .
#   cd packer && packer build -only='amazon-ebs.debian12' -var trueup_wheel=../dist .

locals {
  stamp = regex_replace(timestamp(), "[-:TZ]", "")
  tags = {
    "trueup:bundle-version" = var.bundle_version
    "trueup:bundle-sha256"  = var.bundle_sha256
    "trueup:runlist"        = var.runlist
    "trueup:env"            = var.env
    "trueup:built"          = local.stamp
  }
  wheel_dir = "/var/tmp/trueup-build/wheels"
}

source "amazon-ebs" "debian12" {
  region               = var.region
  instance_type        = var.instance_type
  subnet_id            = var.subnet_id
  iam_instance_profile = var.iam_instance_profile
  ssh_username         = "admin"
  ami_name             = "${var.ami_prefix}-debian12-${local.stamp}"
  ami_description      = "Debian 12 baked by trueup (bundle ${var.bundle_version})"
  encrypt_boot         = true
  kms_key_id           = var.kms_key_id
  tags                 = local.tags
  run_tags             = local.tags

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"] # Debian
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }
}

source "amazon-ebs" "al2023" {
  region               = var.region
  instance_type        = var.instance_type
  subnet_id            = var.subnet_id
  iam_instance_profile = var.iam_instance_profile
  ssh_username         = "ec2-user"
  ami_name             = "${var.ami_prefix}-al2023-${local.stamp}"
  ami_description      = "Amazon Linux 2023 baked by trueup (bundle ${var.bundle_version})"
  encrypt_boot         = true
  kms_key_id           = var.kms_key_id
  tags                 = local.tags
  run_tags             = local.tags

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-x86_64"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["137112412989"] # Amazon
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }
}

build {
  sources = ["source.amazon-ebs.debian12", "source.amazon-ebs.al2023"]

  # IMDSv2 only on the build instance. Packer 1.6 cannot ask for it at launch
  # (metadata_options came in the amazon plugin of Packer 1.7+), so the build requires it
  # here: set the region's default once with
  #   aws ec2 modify-instance-metadata-defaults --http-tokens required --http-put-response-hop-limit 1
  # or add metadata_options { http_tokens = "required" } with current Packer.
  provisioner "shell" {
    script = "${path.root}/../ami/require-imdsv2.sh"
  }

  provisioner "shell" {
    inline = ["mkdir -p /var/tmp/trueup-build/wheels /var/tmp/trueup-build/bundle"]
  }

  # The scripts and units of ami/, exactly as the local build uses them.
  provisioner "file" {
    source      = "${path.root}/../ami"
    destination = "/var/tmp/trueup-build"
  }

  dynamic "provisioner" {
    for_each = var.trueup_wheel == "" ? [] : [var.trueup_wheel]
    labels   = ["file"]
    content {
      source      = "${provisioner.value}/"
      destination = local.wheel_dir
    }
  }

  dynamic "provisioner" {
    for_each = var.bundle_dir == "" ? [] : [var.bundle_dir]
    labels   = ["file"]
    content {
      source      = "${provisioner.value}/"
      destination = "/var/tmp/trueup-build/bundle"
    }
  }

  provisioner "shell" {
    execute_command = "sudo -E sh -eu '{{ .Path }}'"
    environment_vars = [
      "TRUEUP_WHEEL_DIR=${var.trueup_wheel == "" ? "" : local.wheel_dir}",
      "TRUEUP_INDEX_URL=${var.trueup_index_url}",
      "TRUEUP_VERSION=${var.trueup_version}",
      "TRUEUP_BUNDLE=${var.bundle}",
      "TRUEUP_BUNDLE_DIR=${var.bundle_dir == "" ? "" : "/var/tmp/trueup-build/bundle"}",
      "TRUEUP_RUNLIST=${var.runlist}",
      "TRUEUP_ROLE=${var.role}",
      "TRUEUP_ENV=${var.env}",
    ]
    inline = [
      "if [ -n \"$TRUEUP_BUNDLE_DIR\" ]; then mkdir -p \"$TRUEUP_BUNDLE\" && cp -a \"$TRUEUP_BUNDLE_DIR/.\" \"$TRUEUP_BUNDLE/\"; fi",
      "if [ -n \"$TRUEUP_WHEEL_DIR\" ]; then export TRUEUP_WHEEL=\"$TRUEUP_WHEEL_DIR\"; fi",
      "sh /var/tmp/trueup-build/ami/provision.sh",
    ]
  }

  provisioner "shell" {
    execute_command = "sudo -E sh -eu '{{ .Path }}'"
    inline          = ["sh /var/tmp/trueup-build/ami/seal.sh"]
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      bundle_version = var.bundle_version
      bundle_sha256  = var.bundle_sha256
      runlist        = var.runlist
    }
  }
}
