/* SHA-256 (FIPS 180-4), used by the printer to name elided constants by
 * their content. Small and self-contained; not for security purposes. */
#ifndef KILN_IR_SHA256_H
#define KILN_IR_SHA256_H

#include <stddef.h>
#include <stdint.h>

void ir_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
