"""The compiled kernel: the byte codecs of the hot path, one implementation each.

``codecs``: pcap records of the common case (Ethernet, IPv4 without options, not a fragment, TCP)
decoded in the read buffer; the SUT's segments, as the intercept reports them, parsed; IPv4 + TCP
packets built with both checksums, from partial checksums that combine (RFC 1071); the TCP
options the translator reads and writes; the intercept's route key of a segment; the bodies of
the channel's RECORDS frames. ``packet``: the ``Packet`` the decoders fill.

Fields are read and written byte by byte, which Cython compiles into C reads and stores (speedups.py
lists the compiled modules): the ``.pxd`` beside each module gives the C types of its classes and
functions, the annotations in the source those of its locals. The same source runs as pure Python
where nothing compiled it. The rest of the package is plain Python, compiled or not, and comes here
for the bytes.
"""
