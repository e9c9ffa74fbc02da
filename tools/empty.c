/* Placeholder translation unit for a layer that has no sources yet, so
 * its static library still exists for targets that link it. */
typedef int kiln_empty_translation_unit;
