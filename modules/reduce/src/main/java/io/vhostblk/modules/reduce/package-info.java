package io.vhostblk.modules.reduce;
