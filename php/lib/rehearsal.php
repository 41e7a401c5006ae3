<?php

// Intentionally empty. The fork master requires it after the preload, and every spare once more before it parks
// (Master::rehearseWake() in fork-master.php): the require of the worker script after the wake then finds the
// engine's and the opcache's include path already mapped in the spare (~6 fewer page faults on the start's path).
