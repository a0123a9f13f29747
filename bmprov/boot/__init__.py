"""Boot entries and install files on disk: names, settings, rendering, writing, keeping in step.

:mod:`.names` (the per-MAC names each loader requests), :mod:`.settings` (``[boot]``),
:mod:`.osprofiles` (how each OS installs; site names mapped to a base), :mod:`.render`
(Jinja, compiled once, injection guards), :mod:`.writer` (:class:`NodeFileWriter`: one node's
entries and install file, atomically, only when bytes change), :mod:`.jobs` (writing beside a
networking batch's DHCP round trips), :mod:`.sync` (``bmprov pxe render|clear``: every node
against the state). Install-file content and its checks are in :mod:`bmprov.install`.
"""
