//! A synced field whose type has no default value for records from peers that lack the field.

mod learner {
    use morango::Syncable;
    use morango::SyncableRelations;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "Text")]
    pub enum Kind {
        #[sea_orm(string_value = "learner")]
        Learner,
        #[sea_orm(string_value = "coach")]
        Coach,
    }

    impl morango::MorangoValue for Kind {
        fn to_json(&self) -> sea_orm::JsonValue {
            sea_orm::JsonValue::String(self.to_value())
        }
        fn from_json(value: &sea_orm::JsonValue) -> Result<Self, String> {
            let text = value.as_str().ok_or("expected a string")?;
            Kind::try_from_value(&text.to_owned()).map_err(|e| e.to_string())
        }
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learner")]
    #[morango(profile = "facilitydata", model_name = "learner", partition = "p")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub kind: Kind,
        #[morango(default = Kind::Learner)]
        pub previous_kind: Kind,
        pub next_kind: Option<Kind>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

fn main() {}
