"""LAVA: every target and scenario as a LAVA job, run locally by lava-run or in a lab.

The harness does not schedule across machines itself; it speaks LAVA. The build, the
initramfs and the verdict are the same code as `harness run` (harness.run), only the boot
goes through LAVA, so the two paths can be compared run for run.
"""
