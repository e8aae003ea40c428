-- Migration 0003 (PostgreSQL): store ciphertext inline and uncompressed.
--
-- What: envelopes.payload and blob_chunks.data get STORAGE EXTERNAL (never compressed), and
-- envelopes gets toast_tuple_target = 8160 (a row is only moved out of line above ~8 KB).
-- Why: both columns hold age ciphertext, which does not compress. With the defaults every
-- envelope over ~2 KB (most of them: a 2 KiB record seals to ~2.2 KB) was first run through
-- pglz, which fails, and then moved into the TOAST table: a second heap row and a TOAST index
-- entry per envelope on push, and a TOAST index lookup per envelope on pull. Metadata only:
-- existing rows keep their storage until rewritten; new rows follow the new settings.
ALTER TABLE envelopes ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE envelopes SET (toast_tuple_target = 8160);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
