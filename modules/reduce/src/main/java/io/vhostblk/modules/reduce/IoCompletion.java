package io.vhostblk.modules.reduce;

/** The end of one backing-store operation: {@code result} is 0 on success or a negative errno. */
@FunctionalInterface
public interface IoCompletion {

    void complete(int result);
}
