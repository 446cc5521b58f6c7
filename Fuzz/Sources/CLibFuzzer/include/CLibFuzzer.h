#ifndef CLIBFUZZER_H
#define CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): parses libFuzzer's command
/// line and runs `callback` on every input. The fuzz targets call it from their own `main`,
/// because SwiftPM renames an executable's entry point and leaves libFuzzer's `main` unused.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
