package io.vhostblk.server;

import io.vhostblk.compat.VirtioBlkHandler;
import io.vhostblk.hooks.CodeDigest;
import io.vhostblk.hooks.ModuleException;

import java.lang.System.Logger.Level;

/**
 * The compat-lib this process runs with, as a digest to log and to hold against the policy's
 * {@code compat-lib-sha256} pin: modules are vetted against one compat-lib, and a changed one is
 * refused rather than trusted.
 */
final class CompatLibCheck {
    private static final System.Logger LOG = System.getLogger(CompatLibCheck.class.getName());

    private CompatLibCheck() {
    }

    /** Finds and logs the compat-lib's jar digest and checks the policy's pin; returns the digest. */
    static CodeDigest verify(Policy policy) throws StartupException {
        CodeDigest compat = running();
        check(policy, compat);
        return compat;
    }

    private static CodeDigest running;

    /** The running compat-lib's digest, computed and logged once per process (devices share the code). */
    private static synchronized CodeDigest running() throws StartupException {
        if (running == null) {
            try {
                running = CodeDigest.of(VirtioBlkHandler.class);
            } catch (ModuleException e) {
                throw new StartupException("compat-lib: " + e.getMessage(), e);
            }
            LOG.log(Level.INFO, "compat-lib: " + running.describe());
        }
        return running;
    }

    /** Refuses a compat-lib that differs from the policy's pin, or that cannot be checked (not a jar). */
    static void check(Policy policy, CodeDigest compat) throws StartupException {
        String pin = policy.compatLibSha256();
        if (pin == null) {
            return;
        }
        if (!compat.fromJar()) {
            throw new StartupException(policy.file() + ": compat-lib-sha256: the policy pins the compat-lib to " + pin
                    + ", but it runs from the " + compat.describe() + "; refusing to start", null);
        }
        if (!pin.equals(compat.sha256())) {
            throw new StartupException(policy.file() + ": compat-lib-sha256: the policy pins " + pin + ", but "
                    + compat.location() + " has " + compat.sha256() + "; the compat-lib changed, refusing to start", null);
        }
        LOG.log(Level.INFO, "compat-lib: digest matches the pin of " + policy.file());
    }
}
