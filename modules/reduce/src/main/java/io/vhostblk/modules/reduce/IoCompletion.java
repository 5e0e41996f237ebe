package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.OwnRequests;

/** The end of one backing-store operation: {@code result} is 0 on success or a negative errno. */
@FunctionalInterface
public interface IoCompletion extends OwnRequests.Done {

    @Override
    void complete(int result);
}
