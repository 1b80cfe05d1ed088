# The local image build: the same ami/ scripts as ami.pkr.hcl, on a booted Debian 12
# test host instead of an EC2 instance (tests and bench/ bake with it). As root:
#
#   cd packer/local && packer build -var out=/var/tmp/img -var base=$(bash ../../.ci/testhosts-setup.sh --print-path) \
#       -var wheels=../../dist -var bundle=../../recipes -var runlist=base,web .
#
# The image is OUT/upper over the base; `python3 localimage.py mount OUT` mounts it.
# A failed build leaves OUT mounted: `python3 localimage.py clean OUT`.

variable "out" {
  type        = string
  description = "Folder for the build and the image (created)."
}

variable "base" {
  type        = string
  description = "The OS-only image (rootfs folder) to bake on."
}

variable "wheels" {
  type        = string
  description = "Folder with the trueup wheel and its dependencies."
}

variable "bundle" {
  type        = string
  description = "The bundle folder to bake (kept in the image at /srv/trueup/bundle)."
}

variable "runlist" {
  type    = string
  default = ""
}

variable "apt_repo" {
  type        = string
  default     = ""
  description = "Local apt repository for the private-network build host (tests)."
}

variable "python" {
  type    = string
  default = "python3"
}

variable "warm_venv" {
  type        = string
  default     = ""
  description = "Non-empty: pre-install the dependencies from the test harness's cached venv."
}

source "null" "local" {
  communicator = "none"
}

build {
  sources = ["source.null.local"]

  provisioner "shell-local" {
    environment_vars = [
      "PYTHON=${var.python}",
      "STEP=${path.root}/localimage.py",
      "OUT=${var.out}",
      "BASE=${var.base}",
      "AMI=${path.root}/../../ami",
      "WHEELS=${var.wheels}",
      "BUNDLE=${var.bundle}",
    ]
    inline = ["\"$PYTHON\" \"$STEP\" prepare \"$OUT\" \"$BASE\" \"$AMI\" \"$WHEELS\" \"$BUNDLE\""]
  }

  # install.sh, the units, trueup bake, then trueup seal: ami/provision.sh and ami/seal.sh
  provisioner "shell-local" {
    environment_vars = [
      "PYTHON=${var.python}",
      "STEP=${path.root}/localimage.py",
      "OUT=${var.out}",
      "RUNLIST=${var.runlist}",
      "APT_REPO=${var.apt_repo}",
      "WARM=${var.warm_venv}",
    ]
    inline = ["\"$PYTHON\" \"$STEP\" bake \"$OUT\" --runlist \"$RUNLIST\" --apt-repo \"$APT_REPO\" $${WARM:+--warm-venv}"]
  }

  provisioner "shell-local" {
    environment_vars = ["PYTHON=${var.python}", "STEP=${path.root}/localimage.py", "OUT=${var.out}"]
    inline           = ["\"$PYTHON\" \"$STEP\" finish \"$OUT\""]
  }

  post-processor "manifest" {
    output = "${var.out}/packer-manifest.json"
    custom_data = {
      image   = "${var.out}/upper"
      base    = var.base
      runlist = var.runlist
    }
  }
}
