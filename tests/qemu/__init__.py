"""QEMU PXE lab for the end-to-end boot test: a guest image, an isolated network, firmware."""
