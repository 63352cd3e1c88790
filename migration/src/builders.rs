//! Small builders shared by the migrations, so each table reads as a list of
//! columns and constraints.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Starts a `CREATE TABLE` with a UUID primary key named `id`.
pub fn table_with_uuid_key(name: &'static str) -> TableCreateStatement {
    Table::create().table(name).col(pk_uuid("id")).take()
}

/// Adds `organization_id`, the tenant every row belongs to, with its foreign key.
pub fn tenant(table: &mut TableCreateStatement, name: &'static str) {
    table.col(uuid("organization_id"));
    table.foreign_key(
        ForeignKey::create()
            .from(name, "organization_id")
            .to("organizations", "id")
            .on_delete(ForeignKeyAction::Cascade),
    );
}

/// Adds a foreign key from `table.column` to `target.id`.
pub fn references(
    table: &mut TableCreateStatement,
    name: &'static str,
    column: &'static str,
    target: &'static str,
    on_delete: ForeignKeyAction,
) {
    table.foreign_key(ForeignKey::create().from(name, column).to(target, "id").on_delete(on_delete));
}

/// Returns a (possibly unique) index over `columns` of `table`, named after them.
pub fn index(table: &'static str, columns: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(format!("{table}_{}_{}", columns.join("_"), if unique { "key" } else { "idx" })).table(table);
    for column in columns {
        index.col(*column);
    }
    if unique {
        index.unique();
    }
    index.take()
}

/// Creates the tables in order, then their indexes.
pub async fn create_all(
    manager: &SchemaManager<'_>,
    tables: Vec<TableCreateStatement>,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    for table in tables {
        manager.create_table(table).await?;
    }
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}

/// Drops the tables in reverse order of creation.
pub async fn drop_all(manager: &SchemaManager<'_>, tables: &[&'static str]) -> Result<(), DbErr> {
    for table in tables.iter().rev() {
        manager.drop_table(Table::drop().table(*table).to_owned()).await?;
    }
    Ok(())
}

/// `created_at` for a row.
pub fn created_at() -> ColumnDef {
    timestamp_with_time_zone("created_at")
}

/// `updated_at` for a row.
pub fn updated_at() -> ColumnDef {
    timestamp_with_time_zone("updated_at")
}
