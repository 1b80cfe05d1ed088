"""What runs inside an image build, shipped in the wheel as the package ``agent.ami``.

``install.sh`` installs trueup into /opt/trueup; ``systemd/`` holds the units an image
needs. Installed code finds these files with ``agent.host.amifiles.ami_file(name)``.
"""
