"""Pure ANSI C12.19 / OSGP table decoders and encoders for the MEP port.

One module per table family; every layout is declared once (``_layout``) and drives both the
decoder (client) and the encoder (simulator).  Next to its layout, each table has one
:class:`~.table.Table` declaration (id, value type, layout) that the registry collects:
``identity.BT01.decode(data)``, ``registers.BT23.decode(data, dims)``.  No I/O, no clock, no
global mutable state.

* :mod:`.ids` -- table ids, names, :func:`~.ids.parse_table_id`
* :mod:`.table` -- :class:`~.table.FixedTable` and :class:`~.table.DimensionedTable`
* :mod:`.dimensions` -- BT21, BT22, BT27, ET11, ET55 and :class:`~.dimensions.Dimensions`
* :mod:`.profiles` -- realistic :class:`~.dimensions.Dimensions` for Gen 3 / Gen 4 meters
* :mod:`.identity` (BT00, BT01, ET03, ET04), :mod:`.status` (BT03),
  :mod:`.registers` (BT23, BT28), :mod:`.clock` (BT52, BT55), :mod:`.mep` (ET13, ET14, ET16,
  ET50), :mod:`.load_profile` (BT60..BT67), :mod:`.events` (BT71, BT74),
  :mod:`.self_reads` (BT26), with the list header they share in :mod:`.list_status`,
  :mod:`.procedures` (BT07, BT08/ET59/ET85, codecs from :mod:`mepgate.proto.procedures`)
* :mod:`.registry` -- table id -> table (collected from the declarations), and plain-dict
  conversion for ``read BT28 --json``
"""
