package io.vhostblk.server;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A VM's module policy ({@code vhost-blk serve --policy FILE}; the format is in docs/policy.md):
 * which modules its devices get, in which order, from which jars with which digests, and the
 * compat-lib digest it was vetted against.
 *
 * @param file            the policy file, for messages
 * @param vm              the VM the policy is for, or null when it does not say
 * @param moduleDir       where module jars are (resolved against the policy's directory), or null
 * @param compatLibSha256 the pinned compat-lib jar digest (lower-case hex), or null
 * @param modules         the declared modules in chain order (first is nearest the guest)
 */
public record Policy(Path file, String vm, Path moduleDir, String compatLibSha256, List<ModuleDeclaration> modules) {

    public Policy {
        modules = List.copyOf(modules);
    }

    /** Reads and checks a policy file. */
    public static Policy load(Path file) throws PolicyException {
        return PolicyParser.parse(file);
    }

    /** No policy: no modules, no pins. */
    public static Policy none() {
        return new Policy(null, null, null, null, List.of());
    }

    public Optional<ModuleDeclaration> module(String name) {
        return modules.stream().filter(m -> m.name().equals(name)).findFirst();
    }

    public List<String> chain() {
        return modules.stream().map(ModuleDeclaration::name).toList();
    }
}
