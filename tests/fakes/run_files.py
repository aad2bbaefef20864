"""The files every run leaves in its results folder, whichever way it was booted."""

RUN_FILES = (
    "console.log",
    "build.log",
    "reports.json",
    "junit.xml",
    "metadata.json",
    "summary.txt",
    "initramfs.cpio.gz",
)
