//! The schema checks that can only run when the profile is opened: in SeaORM's classic format a many-to-many
//! relation lives in `Related::via`, run-time code no macro can see; its junction table shows up as a
//! `has_many` relation to a table referencing two tables.

use morango::{Engine, Error};
use sea_orm::ConnectionTrait;

use crate::on_both_backends;
use crate::support::{Backend, TestDb};

mod blog {
    pub mod post {
        use morango::{Syncable, SyncableRelations};
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
        #[sea_orm(table_name = "post")]
        #[morango(profile = "blog", model_name = "post", partition = "blog")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: String,
            pub _morango_source_id: String,
            pub _morango_partition: String,
            pub _morango_dirty_bit: bool,
            pub title: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
        pub enum Relation {
            #[sea_orm(has_many = "super::post_tag::Entity")]
            PostTag,
            #[sea_orm(has_many = "super::post_view::Entity")]
            PostView,
        }

        impl Related<super::post_tag::Entity> for Entity {
            fn to() -> RelationDef {
                Relation::PostTag.def()
            }
        }

        impl Related<super::post_view::Entity> for Entity {
            fn to() -> RelationDef {
                Relation::PostView.def()
            }
        }
    }

    /// A tag: local to the application.
    pub mod tag {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "tag")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub name: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// A local child table of posts (one reference): not a junction, allowed.
    pub mod post_view {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "post_view")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub post_id: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {
            #[sea_orm(belongs_to = "super::post::Entity", from = "Column::PostId", to = "super::post::Column::Id")]
            Post,
        }

        impl Related<super::post::Entity> for Entity {
            fn to() -> RelationDef {
                Relation::Post.def()
            }
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// A junction table the application keeps to itself: not syncable.
    pub mod post_tag {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "post_tag")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub post_id: String,
            #[sea_orm(primary_key, auto_increment = false)]
            pub tag: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {
            #[sea_orm(belongs_to = "super::post::Entity", from = "Column::PostId", to = "super::post::Column::Id")]
            Post,
            #[sea_orm(belongs_to = "super::tag::Entity", from = "Column::Tag", to = "super::tag::Column::Name")]
            Tag,
        }

        impl Related<super::post::Entity> for Entity {
            fn to() -> RelationDef {
                Relation::Post.def()
            }
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    morango::profile!(pub BLOG = "blog": [post::Entity]);
}

on_both_backends!(a_classic_junction_outside_the_profile_is_refused_when_the_engine_opens);

async fn a_classic_junction_outside_the_profile_is_refused_when_the_engine_opens(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    morango::migration::migrate(&test_db.db).await.unwrap();
    let schema = sea_orm::Schema::new(test_db.db.get_database_backend());
    for table in [
        schema.create_table_from_entity(blog::post::Entity),
        schema.create_table_from_entity(blog::tag::Entity),
        schema.create_table_from_entity(blog::post_tag::Entity),
        schema.create_table_from_entity(blog::post_view::Entity),
    ] {
        test_db.db.execute(&table).await.unwrap();
    }
    let error = Engine::open(test_db.db.clone(), &blog::BLOG).await.expect_err("the profile cannot sync post_tag");
    match &error {
        Error::Schema(message) => {
            assert!(message.contains("`post`") && message.contains("`post_tag`"), "{message}");
            assert!(message.contains("not a syncable model of profile `blog`"), "{message}");
            assert!(!message.contains("post_view"), "a local child table is not a junction: {message}");
        }
        other => panic!("expected a schema error, got {other}"),
    }
    test_db.finish().await;
}
