"""OS install files: options from the sheet and the site, disk layouts, and their checks.

:mod:`.options` (root password hash, SSH keys, partition scheme, post-install snippet,
callback URL; validated), :mod:`.disklayout` (which disks hold what, one plan for every
installer), :mod:`.partman` (Debian recipe reader), :mod:`.check` (upstream validators at
render time), :mod:`.kscheck` (``bmprov ks validate``), :mod:`.sitekey` (the site SSH key).
"""
