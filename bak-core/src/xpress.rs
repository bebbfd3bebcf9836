//! Decoder of Microsoft's Xpress Huffman compression ([MS-XCA] 2.2.4), used by compressed SQL Server backups.
