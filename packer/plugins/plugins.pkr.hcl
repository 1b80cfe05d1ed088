# For current Packer (1.7 and later), which no longer bundles the amazon plugin:
#
#   packer init packer/plugins/ && cd packer && packer validate .
#
# Kept out of packer/ itself: Packer 1.6 (Debian 12's) rejects required_plugins.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}
