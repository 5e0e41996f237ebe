package io.vhostblk.modules.crypt;

/** The on-disk LUKS version: 1 (QEMU's luks driver reads it) or 2 (cryptsetup's default, Argon2id, 4096-byte sectors). */
public enum LuksVersion {
    LUKS1,
    LUKS2
}
