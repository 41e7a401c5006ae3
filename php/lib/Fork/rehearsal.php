<?php

// Intentionally empty: the master requires it once and every spare once more before it parks (Prewarm), so the
// require of the worker script after the wake finds the include path already mapped in the spare.
