/// An extension's configuration tables: those its script marked with `pg_extension_config_dump`
/// (`pg_extension.extconfig`), with the filter it gave (`extcondition`, such as `WHERE NOT is_default`).
///
/// It exists because such a table is both the extension's (its script creates it and its default rows)
/// and the user's (the rows the filter selects were added afterwards): a backup that skipped it as an
/// extension table lost them. Backups copy exactly the rows the filter selects, as pg_dump does.
enum ExtensionConfigTables {
    /// A SQL expression: the filter of the table `alias` (a `pg_class` row) if an extension lists it as
    /// a configuration table (`''` when it registered no filter), else NULL.
    static func filterSQL(_ alias: String) -> String {
        """
        (SELECT coalesce(x.extcondition[array_position(x.extconfig, \(alias).oid)], '') FROM pg_extension x \
        WHERE \(alias).oid = ANY(x.extconfig) LIMIT 1)
        """
    }
}
