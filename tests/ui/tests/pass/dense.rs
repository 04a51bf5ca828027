//! Dense entities (`#[sea_orm::model]`): a tree and a many-to-many relation through a junction that is itself a
//! syncable model of the profile.

#![allow(non_snake_case)] // SeaORM's `ActiveModelEx` setters: `set__morango_partition`

mod post {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "post")]
    #[morango(profile = "blog", model_name = "post", partition = "posts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub title: String,
        pub reply_to: Option<String>,
        #[sea_orm(self_ref, relation_enum = "ReplyTo", from = "reply_to", to = "id")]
        pub parent: BelongsTo<Option<Entity>>,
        #[sea_orm(has_many, via = "post_tag")]
        pub tags: HasMany<super::tag::Entity>,
    }
}

mod tag {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "tag")]
    #[morango(profile = "blog", model_name = "tag", partition = "tags", source_id = "${name}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub name: String,
        #[sea_orm(has_many, via = "post_tag")]
        pub posts: HasMany<super::post::Entity>,
    }
}

mod post_tag {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "post_tag")]
    #[morango(profile = "blog", model_name = "post_tag", partition = "posts", source_id = "${post_id}:${tag_id}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub post_id: String,
        pub tag_id: String,
        #[sea_orm(belongs_to, from = "post_id", to = "id")]
        pub post: BelongsTo<super::post::Entity>,
        #[sea_orm(belongs_to, from = "tag_id", to = "id")]
        pub tag: BelongsTo<super::tag::Entity>,
    }
}

morango::profile!(BLOG = "blog": [post_tag::Entity, tag::Entity, post::Entity]);

fn main() {
    let order: Vec<&str> = BLOG.models().map(|m| m.model_name()).collect();
    assert_eq!(order, ["tag", "post", "post_tag"]);
}
