variable "region" {
  type        = string
  default     = "eu-west-1"
  description = "AWS region to build in (and where the AMI is registered)."
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the build instance (empty: the default VPC)."
}

variable "iam_instance_profile" {
  type        = string
  default     = "trueup-bake"
  description = "Instance profile of the build instance: read access to the bundle (s3:GetObject, ssm:GetParameter*)."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the encrypted root volume (empty: the account's default EBS key)."
}

variable "trueup_wheel" {
  type        = string
  default     = ""
  description = "Local folder holding a trueup wheel and its dependencies (uploaded; no network needed). Empty: install from trueup_index_url."
}

variable "trueup_index_url" {
  type    = string
  default = "https://pypi.org/simple"
}

variable "trueup_version" {
  type        = string
  default     = ""
  description = "trueup version from the index (empty: the newest)."
}

variable "bundle" {
  type        = string
  default     = "ssm:/trueup/prod"
  description = "The bundle to bake: ssm:/trueup/<env>, s3://bucket/key.tar.gz, or /srv/trueup/bundle for the folder bundle_dir uploads."
}

variable "bundle_dir" {
  type        = string
  default     = ""
  description = "Local bundle folder to upload to /srv/trueup/bundle (set bundle to that path)."
}

variable "bundle_version" {
  type        = string
  default     = "unknown"
  description = "The bundle's version, for the AMI tags (trueup publish prints it)."
}

variable "bundle_sha256" {
  type        = string
  default     = "unknown"
  description = "The bundle's sha256, for the AMI tags."
}

variable "runlist" {
  type        = string
  default     = ""
  description = "Recipes to bake, comma separated (empty: the bundle's run list)."
}

variable "role" {
  type    = string
  default = ""
}

variable "env" {
  type    = string
  default = "prod"
}

variable "ami_prefix" {
  type    = string
  default = "trueup"

  validation {
    condition     = length(var.ami_prefix) > 0 && length(var.ami_prefix) <= 80 && regex_replace(var.ami_prefix, "[-A-Za-z0-9()./_]", "") == ""
    error_message = "The ami_prefix must be 1-80 characters: letters, digits, ( ) . - / _."
  }
}

variable "volume_size" {
  type    = number
  default = 8
}
