package io.vhostblk.modules.cache;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

class BlockTableTest {

    @Test
    void behavesLikeAMapUnderRandomPutsAndRemoves() {
        Random random = new Random(11);
        BlockTable t = new BlockTable(500);
        Map<Long, Integer> model = new HashMap<>();
        for (int i = 0; i < 200_000; i++) {
            long key = random.nextInt(2000);
            if (random.nextBoolean() && model.size() < 500) {
                int v = random.nextInt(1000);
                t.put(key, v);
                model.put(key, v);
            } else {
                assertEquals(model.containsKey(key) ? model.remove(key) : -1, t.remove(key));
            }
            long probe = random.nextInt(2000);
            assertEquals(model.getOrDefault(probe, -1), t.get(probe));
        }
        assertEquals(model.size(), t.size());
    }
}
