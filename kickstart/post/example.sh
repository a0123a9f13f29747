#!/bin/sh
# bmprov sample post-install snippet: name it in the sheet's post-install column ("example")
# or in [install] post_script. Site snippets live in <templates dir>/kickstart/post/NAME.sh.
echo "installed by bmprov on $(date -u +%Y-%m-%dT%H:%M:%SZ)" > /etc/bmprov-installed
